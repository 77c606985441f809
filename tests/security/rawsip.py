"""Raw SIP over UDP for the security matrix: byte-exact requests from loopback sources
other than 127.0.0.1, the replies they get, digest answers, and what Kamailio's processes
and log look like before and after.

Kamailio answers a UDP request at its source address and at the port of the topmost Via
(5060 when the Via names none), so every request built here carries the sending socket's
port in its Via: `PORT` in a message is replaced by ":<port>" when it is sent.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import re
import secrets
import selectors
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

PORT = b"@@PORT@@"

# lines of Kamailio's log that mean a request hit a bug in our Python: an uncaught
# exception (app_python3 prints its traceback), or one the router caught and logged
LOG_PROBLEM = re.compile(r"Traceback|Unhandled exception|UnicodeDecodeError|Exception|\bBUG\b")


# ------------------------------------------------------------------ sources and sockets

class Sources:
    """Loopback source addresses handed out in turn (127.0.<subnet>.1-254).

    pike bans a source sending more than 64 requests in 2 s, and a ban outlives a test;
    spreading requests over many sources keeps a test measuring what it means to.
    127.0.0.1 (the IVR's and the gateway's address, trusted) is never among them.
    """

    def __init__(self, subnet: int):
        assert 1 <= subnet <= 254
        self._hosts = itertools.cycle(range(1, 255))
        self.subnet = subnet

    def next(self) -> str:
        return f"127.0.{self.subnet}.{next(self._hosts)}"


@dataclass
class Reply:
    """One datagram that came back."""
    raw: bytes

    @property
    def code(self) -> int:
        """The status code, 0 when the datagram is not a SIP response."""
        # case-insensitive: Kamailio echoes the request's spelling ("sip/2.0 405 ...")
        m = re.match(rb"(?i)SIP/2\.0 (\d{3}) ", self.raw)
        return int(m.group(1)) if m else 0

    @property
    def reason(self) -> str:
        first = self.raw.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
        return first.split(" ", 2)[2] if first.count(" ") >= 2 else ""

    def header(self, name: str) -> str:
        """First value of a header (long or compact name), '' when absent."""
        return headers(self.raw).get(name.lower(), [""])[0]

    def header_all(self, name: str) -> list[str]:
        return headers(self.raw).get(name.lower(), [])

    def __str__(self) -> str:
        return self.raw.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")


class Endpoint:
    """One UDP socket on a loopback source address that talks to one SIP target."""

    def __init__(self, target: tuple[str, int], source: str):
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.sock.setblocking(False)
        self.address, self.port = self.sock.getsockname()
        self.replies: list[Reply] = []

    def send(self, message: bytes) -> None:
        self.sock.sendto(message.replace(PORT, b":%d" % self.port), self.target)

    def poll(self) -> list[Reply]:
        """Collect every datagram waiting on the socket; all replies so far."""
        while True:
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return self.replies
            self.replies.append(Reply(data))

    def final(self, after: int = 0) -> Reply | None:
        """The first final (>= 200) reply, looking at replies[after:]."""
        return next((r for r in self.replies[after:] if r.code >= 200 or r.code == 0), None)

    def wait_final(self, timeout: float, after: int = 0) -> Reply | None:
        """Wait up to `timeout` s for a final reply; None when none came (silence)."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.sock, selectors.EVENT_READ)
            while self.final(after) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sel.select(left)
                self.poll()
        return self.final(after)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Endpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def exchange_all(target: tuple[str, int], messages: list[bytes], sources: Sources,
                 timeout: float) -> list[Reply | None]:
    """Send every message at once, each from its own source; the final reply each got
    within `timeout` s (None: silence). One wait for the whole batch, not one each."""
    endpoints = [Endpoint(target, sources.next()) for _ in messages]
    try:
        for ep, message in zip(endpoints, messages):
            ep.send(message)
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            for ep in endpoints:
                sel.register(ep.sock, selectors.EVENT_READ, ep)
            while any(ep.final() is None for ep in endpoints):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                for key, _ in sel.select(left):
                    key.data.poll()
        return [ep.final() for ep in endpoints]
    finally:
        for ep in endpoints:
            ep.close()


# ------------------------------------------------------------------------ reading SIP

_COMPACT = {"f": "from", "t": "to", "i": "call-id", "v": "via", "m": "contact",
            "l": "content-length", "c": "content-type", "k": "supported", "s": "subject",
            "e": "content-encoding", "o": "event", "r": "refer-to", "u": "allow-events"}


def header_names(message: bytes) -> list[str]:
    """Lower-case names of the header lines of a message as the most liberal reader
    splits them: a line ends at CRLF, at a bare LF *or at a bare CR*, and a line that
    starts with SP or HT continues the one before (so is no header of its own)."""
    head = re.split(rb"\r?\n\r?\n", message, maxsplit=1)[0]
    names = []
    for line in re.split(rb"\r\n|\n|\r", head)[1:]:
        if not line or line[:1] in (b" ", b"\t") or b":" not in line:
            continue
        names.append(line.split(b":", 1)[0].strip().decode("latin-1").lower())
    return names


def headers(message: bytes) -> dict[str, list[str]]:
    """Lower-case long header name -> values, folded lines joined (CRLF or LF)."""
    head = re.split(rb"\r?\n\r?\n", message, maxsplit=1)[0].decode("utf-8", "replace")
    lines: list[str] = []
    for line in re.split(r"\r?\n", head)[1:]:
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    found: dict[str, list[str]] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            found.setdefault(_COMPACT.get(key, key), []).append(value.strip())
    return found


def tag_of(value: str) -> str:
    m = re.search(r";\s*tag\s*=\s*([^;>\s]+)", value)
    return m.group(1) if m else ""


# ------------------------------------------------------------------------ digest auth

def digest(challenge: Reply, method: str, uri: str, user: bytes, password: str) -> bytes:
    """The (Proxy-)Authorization header line answering a 401/407 (RFC 2617, MD5).

    `user` is bytes so a test can send a username that is not UTF-8; the response is
    computed over those very bytes, as a phone would.
    """
    is_proxy = challenge.code == 407
    value = challenge.header("proxy-authenticate" if is_proxy else "www-authenticate")
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', value))
    realm, nonce = params["realm"], params["nonce"]

    def md5(*parts: bytes) -> str:
        return hashlib.md5(b":".join(parts)).hexdigest()

    ha1 = md5(user, realm.encode(), password.encode())
    ha2 = md5(method.encode(), uri.encode())
    fields = [b'Digest username="' + user + b'"', f'realm="{realm}"'.encode(),
              f'nonce="{nonce}"'.encode(), f'uri="{uri}"'.encode(), b"algorithm=MD5"]
    if "auth" in params.get("qop", "").split(","):
        cnonce, nc = secrets.token_hex(8), "00000001"
        response = md5(ha1.encode(), nonce.encode(), nc.encode(), cnonce.encode(), b"auth",
                       ha2.encode())
        fields += [b"qop=auth", f'cnonce="{cnonce}"'.encode(), f"nc={nc}".encode()]
    else:
        response = md5(ha1.encode(), nonce.encode(), ha2.encode())
    fields.append(f'response="{response}"'.encode())
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"'.encode())
    name = b"Proxy-Authorization" if is_proxy else b"Authorization"
    return name + b": " + b", ".join(fields)


# ------------------------------------------------------------------------ building SIP

def sdp(address: str = "127.0.0.1", port: int = 40000, session: bytes = b"-") -> bytes:
    return (b"v=0\r\no=- 1 1 IN IP4 " + address.encode() + b"\r\ns=" + session + b"\r\n"
            b"c=IN IP4 " + address.encode() + b"\r\nt=0 0\r\n"
            b"m=audio " + str(port).encode() + b" RTP/AVP 0 101\r\n"
            b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")


def new_branch() -> bytes:
    return b"z9hG4bK" + secrets.token_hex(8).encode()


class RawUas:
    """A UDP socket playing a SIP peer Kamailio relays to (the PSTN gateway): it keeps
    every request as received, byte for byte, and answers each INVITE with `answer`
    (a final non-2xx, so no call is set up), BYE/CANCEL/OPTIONS with 200."""

    def __init__(self, address: str, port: int, answer: int = 486, reason: str = "Busy Here"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, port))
        self.sock.setblocking(False)
        self.answer, self.reason = answer, reason
        self.requests: list[bytes] = []

    def poll(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if re.match(rb"(?i)SIP/2\.0 ", data):
                continue
            self.requests.append(data)
            method = data.split(b" ", 1)[0]
            if method == b"INVITE":
                self.sock.sendto(response(data, self.answer, self.reason), peer)
            elif method in (b"BYE", b"CANCEL", b"OPTIONS"):
                self.sock.sendto(response(data, 200, "OK"), peer)

    def invites(self, call_id: str) -> list[bytes]:
        """The INVITEs (retransmissions included) received for one Call-ID."""
        return [r for r in self.requests if r.startswith(b"INVITE ")
                and headers(r).get("call-id", [""])[0] == call_id]

    def close(self) -> None:
        self.sock.close()


def response(request: bytes, code: int, reason: str) -> bytes:
    """A response to a request: its Vias, From, To (tagged), Call-ID and CSeq."""
    h = headers(request)
    to = h.get("to", [""])[0]
    if not tag_of(to):
        to += ";tag=uas" + secrets.token_hex(3)
    lines = [f"SIP/2.0 {code} {reason}"] + [f"Via: {v}" for v in h.get("via", [])] + [
        f"From: {h.get('from', [''])[0]}", f"To: {to}",
        f"Call-ID: {h.get('call-id', [''])[0]}", f"CSeq: {h.get('cseq', [''])[0]}",
        "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def pump(until, timeout: float, *parties) -> bool:
    """Let every party (Endpoint, RawUas) take what arrives until `until()` holds or
    `timeout` s pass; whether it held."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for party in parties:
            sel.register(party.sock, selectors.EVENT_READ, party)
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for key, _ in sel.select(left):
                key.data.poll()
    return True


def ack_for(invite: bytes, final: Reply, route: list[str] | None = None,
            target: str = "") -> bytes:
    """The ACK of an INVITE's final response: hop-by-hop for a non-2xx (same branch,
    same Request-URI), end-to-end along the route set for a 2xx (new branch)."""
    h = headers(invite)
    ruri = invite.split(b" ", 2)[1].decode()
    via = h["via"][0]
    if 200 <= final.code < 300:
        ruri = target or ruri
        via = re.sub(r"branch=[^;]+", "branch=" + new_branch().decode(), via)
    cseq = h["cseq"][0].split()[0]
    lines = [f"ACK {ruri} SIP/2.0", f"Via: {via}", "Max-Forwards: 70",
             f"From: {h['from'][0]}", f"To: {final.header('to')}",
             f"Call-ID: {h['call-id'][0]}", f"CSeq: {cseq} ACK"]
    if route:
        lines.append("Route: " + ", ".join(route))
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(
        "utf-8", "surrogateescape")


def bye_for(invite: bytes, final: Reply, route: list[str], target: str) -> bytes:
    """A BYE ending the dialog a 2xx to `invite` set up."""
    h = headers(invite)
    via = re.sub(r"branch=[^;]+", "branch=" + new_branch().decode(), h["via"][0])
    cseq = int(h["cseq"][0].split()[0]) + 1
    lines = [f"BYE {target} SIP/2.0", f"Via: {via}", "Max-Forwards: 70",
             f"From: {h['from'][0]}", f"To: {final.header('to')}",
             f"Call-ID: {h['call-id'][0]}", f"CSeq: {cseq} BYE"]
    if route:
        lines.append("Route: " + ", ".join(route))
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(
        "utf-8", "surrogateescape")


def route_set(final: Reply) -> tuple[list[str], str]:
    """A UAC's route set (Record-Route reversed) and remote target (Contact URI)."""
    rr = [v.strip() for value in final.header_all("record-route") for v in value.split(",")]
    contact = final.header("contact")
    m = re.search(r"<([^>]+)>", contact)
    return list(reversed(rr)), (m.group(1) if m else contact.split(";")[0].strip())


# ------------------------------------------------------------------ Kamailio's health

@dataclass
class Processes:
    """Kamailio's process group at one moment: pid -> private resident memory (kB)."""
    rss_anon_kb: dict[int, int] = field(default_factory=dict)

    @property
    def pids(self) -> set[int]:
        return set(self.rss_anon_kb)

    @property
    def total_kb(self) -> int:
        return sum(self.rss_anon_kb.values())


def processes(group: int) -> Processes:
    """Every live process of a process group (Kamailio runs in its own session, so its
    main process's pid is the group's id) with its RssAnon: heap and Python objects,
    not the shared memory segment all workers map."""
    found = Processes()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            fields_ = stat.rsplit(")", 1)[1].split()
            if int(fields_[2]) != group or fields_[0] == "Z":
                continue
            status = Path(entry.path, "status").read_text()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        m = re.search(r"^RssAnon:\s+(\d+) kB", status, re.M)
        found.rss_anon_kb[int(entry.name)] = int(m.group(1)) if m else 0
    return found


def all_processes(tg, timeout: float = 20.0) -> Processes:
    """Kamailio's process group once every process it announced is up: it answers
    OPTIONS as soon as its UDP workers run, and forks the others (timers, ctl, TCP)
    later, so a baseline taken at once would miss them."""
    group = tg.procs["kamailio"].pid
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(r"processes \(at least\): (\d+)", tg.log("kamailio"))
        now = processes(group)
        if m and len(now.pids) >= int(m.group(1)):
            return now
        if time.monotonic() > deadline:
            raise TimeoutError(f"Kamailio announced {m and m.group(1)} processes, has "
                               f"{len(now.pids)}")
        time.sleep(0.1)


class LogWatch:
    """What a program wrote to its log after a mark, read as bytes from an offset."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = self._size()

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def mark(self) -> None:
        self.offset = self._size()

    def text(self) -> str:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            return f.read().decode("utf-8", "replace")

    def problems(self) -> list[str]:
        """Lines since the mark that show a Python exception, caught or not."""
        return [line for line in self.text().splitlines() if LOG_PROBLEM.search(line)]

    def new_problems(self) -> list[str]:
        """Like problems(), for the complete lines written since the last call (or the
        mark), which then become the mark: a cheap check after every request."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        data = data[:data.rfind(b"\n") + 1]
        self.offset += len(data)
        return [line for line in data.decode("utf-8", "replace").splitlines()
                if LOG_PROBLEM.search(line)]


def kamailio_health(tg, workers: Processes, log: LogWatch, source: str) -> list[str]:
    """What is wrong with the stack's Kamailio now: Python exceptions logged since the
    log's mark, workers gone (or new), OPTIONS from `source` unanswered."""
    from tests.stack import sip_ping
    logged = log.problems()
    problems = [f"log: {line}" for line in logged[:8]]
    if len(logged) > 8:
        problems.append(f"log: ... and {len(logged) - 8} more lines like these")
    now = processes(tg.procs["kamailio"].pid)
    if now.pids != workers.pids:
        problems.append(f"Kamailio's processes {sorted(workers.pids)} are now {sorted(now.pids)}")
    ping = sip_ping(tg.settings.sip_address, tg.settings.sip_port, timeout=5.0, source=source)
    if not ping.startswith("SIP/2.0 200"):
        problems.append(f"OPTIONS from {source} got {ping[:40]!r}")
    return problems
