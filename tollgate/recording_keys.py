"""On-demand recording invoked during the call by the client's code keyed as RFC 4733
digits (virtual-pbx-client.txt "On-demand recording", invoked by DTMF).

Digits sent in the media never reach Kamailio; rtpengine reports each one as a JSON
datagram (`--dtmf-log-dest`) to this listener, one per node. Kamailio marks the calls
of clients that record on request by DTMF (keyspace.recording_keys: customer, media set,
the caller's from-tag) when it relays them; the listener keeps the caller's last keys
there and, once they end with the client's recording code, asks the call's rtpengine
instances to start recording (ng `start recording`) and marks the call recorded, so that
its dialog's end queues the capture for the xDR writer to file (kemi/dialogs.py).
Digits of calls nobody marked, of the far end, or from an address that is not one of the
call's rtpengine instances are ignored; the keys themselves are never logged (they may
be PINs).
"""
from __future__ import annotations

import ipaddress
import json
import logging
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from functools import lru_cache

import redis
from prometheus_client import Counter

from billing import policy
from tollgate import config, keyspace, media, ng
from tollgate.directory import Directory, Record

log = logging.getLogger("tollgate.recording_keys")

KEYS = Counter("tollgate_recording_keys_total",
               "RFC 4733 digits reported by rtpengine, by what they did", ["result"])
# how many of the caller's last keys are kept (a code is shorter)
KEPT = 8
EVENTS = "0123456789*#ABCD"  # RFC 4733 event codes 0-15


def digit(event: object) -> str:
    """The key of an RFC 4733 event code ("" for anything but 0-15)."""
    if isinstance(event, bool) or not isinstance(event, int):
        return ""
    return EVENTS[event] if 0 <= event < len(EVENTS) else ""


def parse(datagram: bytes) -> tuple[str, str, str] | None:
    """(call-id, source tag, key) of one rtpengine DTMF report; None when it is not one."""
    try:
        report = json.loads(datagram.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(report, dict):
        return None
    call_id, tag, key = report.get("callid"), report.get("source_tag"), digit(report.get("event"))
    if not (isinstance(call_id, str) and 0 < len(call_id) <= 255 and isinstance(tag, str)
            and key):
        return None
    return call_id, tag, key


Starter = Callable[[str, str], bool]  # (ng host:port, call-id) -> recording started


def start_recording(address: str, call_id: str) -> bool:
    """Ask one rtpengine instance to record the call (False: it has no such call, or
    did not answer)."""
    client = ng.Ng(*ng.address(address), timeout=1.0)
    try:
        reply = client("start recording", **{"call-id": call_id})
    except (OSError, ValueError) as exc:
        log.warning("[%s] RECORD: rtpengine %s: %r", call_id, address, exc)
        return False
    finally:
        client.close()
    return reply.get("result") == b"ok"


class Listener:
    """Turns DTMF reports into started recordings (one per call)."""

    def __init__(self, settings: config.Settings, client: redis.Redis, directory: Directory,
                 starter: Starter = start_recording):
        self.settings, self.client, self.directory = settings, client, directory
        self.starter = starter

    def handle(self, datagram: bytes, source: str) -> str:
        """What one datagram from `source` (an IP address) did: ignored, kept, started,
        failed."""
        found = parse(datagram)
        if found is None:
            return self._count("ignored")
        call_id, tag, key = found
        key_name = keyspace.recording_keys(call_id)
        watched = {_text(k): _text(v) for k, v in self.client.hgetall(key_name).items()}
        if not watched or watched.get("recorded"):
            return self._count("ignored")  # not a watched call, or recorded already
        if tag != watched.get("from_tag"):  # only the client's caller keys its code
            log.info("[%s] RECORD: a key of the far end ignored", call_id)
            return self._count("ignored")
        ident = int(watched["media_set"]) if watched.get("media_set", "").isdigit() \
            else media.DEFAULT_SET
        addresses = media.instances(self.settings, ident)
        if not any(same_host(source, _ip(ng.address(a)[0])) for a in addresses):
            log.warning("[%s] RECORD: a key reported by %s, not the call's rtpengine",
                        call_id, source)
            return self._count("ignored")
        keyed = (watched.get("keys", "") + key)[-KEPT:]
        self.client.hset(key_name, "keys", keyed)
        customer = self._customer(watched)
        if customer is None or not policy.records_on_request(customer, "dtmf"):
            return self._count("ignored")
        if not policy.keyed_code(customer, keyed):
            log.info("[%s] RECORD: a key of the call kept (%d kept)", call_id, len(keyed))
            return self._count("kept")
        if not any(self.starter(address, call_id) for address in addresses):
            log.error("[%s] RECORD: no rtpengine of the call started recording", call_id)
            return self._count("failed")
        self.client.hset(key_name, "recorded", "1")
        log.info("[%s] RECORD: recording the call: client %s keyed its code", call_id,
                 customer["id"])
        return self._count("started")

    def _customer(self, watched: Mapping[str, str]) -> Record | None:
        ident = watched.get("customer", "")
        return self.directory.customer(int(ident)) if ident.isdigit() else None

    @staticmethod
    def _count(result: str) -> str:
        KEYS.labels(result).inc()
        return result


@lru_cache(maxsize=64)
def same_host(source: str, instance: str) -> bool:
    """A report from `source` may come from the rtpengine at `instance`: the same address,
    or any loopback address for an instance on loopback (the kernel sends from 127.0.0.1
    to another 127.x address; on loopback the trust boundary is this host either way)."""
    if source == instance:
        return True
    try:
        return ipaddress.ip_address(source).is_loopback and \
            ipaddress.ip_address(instance).is_loopback
    except ValueError:
        return False


def _ip(host: str) -> str:
    """The IPv4 address an rtpengine instance's host name stands for."""
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def serve(listener: Listener, sock: socket.socket, stop: threading.Event) -> None:
    """Handle datagrams until `stop`; a Redis fault loses that key, never the loop."""
    sock.settimeout(0.5)
    while not stop.is_set():
        try:
            datagram, (source, _) = sock.recvfrom(2048)
        except TimeoutError:
            continue
        try:
            listener.handle(datagram, source)
        except redis.RedisError as exc:
            log.error("[-] RECORD: a key lost, Redis failed: %r", exc)
            KEYS.labels("failed").inc()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = config.load()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((settings.rtpengine_address, settings.dtmf_events_port))
    directory = Directory.from_settings(settings)
    log.info("[-] START: recording keys from rtpengine on udp:%s:%d",
             settings.rtpengine_address, settings.dtmf_events_port)
    serve(Listener(settings, directory.client, directory), sock, stop)


if __name__ == "__main__":
    main()
