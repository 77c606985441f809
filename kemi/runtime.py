"""Per-process state of a Kamailio worker: settings, Redis, caches, xDR emitter.

Kamailio forks its workers after loading the script, so nothing here connects before
the first use inside a worker (child_init or the first request).
"""
from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from billing.internal import Internal
from tollgate import config, metrics, numbers, redis_conn, tariffs
from tollgate.directory import Directory, fail_fast
from tollgate.geoip import Countries
from tollgate.reservations import Reservations
from tollgate.slots import Slots
from tollgate.xdr_emit import XdrEmitter


@dataclass
class Request:
    """What one SIP request carries from step to step (reset by reqinit)."""
    text: str = ""                     # the whole message, known to be UTF-8
    internal: Internal | None = None   # signed values, when it came from the IVR
    slot: str = ""                     # the client whose call slot this call holds
    domain: str = ""                   # the client's SIP domain the caller logged in to
    media_set: int = 0                 # the rtpengine set of the call's media (tollgate.media)
    record: bool = False               # the caller asked to record the call (service code)


class Runtime:
    """Lazily built per-process objects."""

    def __init__(self) -> None:
        self.settings = config.load()
        self.secret = self.settings.secret()
        self.pid = 0
        self._directory: Directory | None = None
        self._emitter: XdrEmitter | None = None
        self._redis: redis.Redis | None = None
        self._reservations: Reservations | None = None
        self._slots: Slots | None = None
        # the GeoIP country of an address ("" unknown: no database, or not in it)
        self.country_of: Callable[[str], str] = Countries(self.settings.geoip_path).country
        self.req = Request()
        self.turns = itertools.count()   # round-robin distribution over the IVR workers
        self._exported: dict[str, int] = {}
        self._exported_at = 0.0
        self.trusted = {self.settings.ivr_address, self.settings.pstn_gateway.split(":")[0]}

    def child_init(self) -> None:
        """Drop anything inherited from the parent; connections open on first use."""
        self.pid = os.getpid()
        self._directory = self._emitter = self._redis = self._reservations = None
        self._exported = {}

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None or self.pid != os.getpid():
            self.pid = os.getpid()
            self._redis = redis_conn.client(self.settings, health_check_interval=0,
                                            # after a Redis restart (or failover) each
                                            # worker's pooled socket is dead and its first
                                            # command would fail a call; a hung Redis
                                            # stays a fast 503
                                            retry=fail_fast())
            self._directory = self._emitter = self._reservations = None
        return self._redis

    def preload_tariffs(self) -> tariffs.TariffBook | None:
        """Read every tariff and the account and access-number indexes in Kamailio's main
        process (before the fork), on a connection of its own closed before the fork."""
        timeout = max(self.settings.redis_timeout_ms / 1000, 5.0)
        client = redis_conn.client(self.settings, timeout=timeout, connect_timeout=timeout)
        try:
            numbers.preload_shared(client)
            return tariffs.preload_shared(client)
        finally:
            client.close()

    @property
    def directory(self) -> Directory:
        if self._directory is None:
            s = self.settings
            self._directory = Directory(self.redis, size=s.cache_size, ttl=s.cache_ttl,
                                        negative_ttl=s.cache_negative_ttl,
                                        tariffs=tariffs.SHARED, indexes=numbers.SHARED)
        return self._directory

    @property
    def reservations(self) -> Reservations:
        if self._reservations is None or self._reservations.client is not self.redis:
            self._reservations = Reservations(self.redis)
        return self._reservations

    @property
    def slots(self) -> Slots:
        if self._slots is None or self._slots.client is not self.redis:
            self._slots = Slots(self.redis)
        return self._slots

    @property
    def emitter(self) -> XdrEmitter:
        if self._emitter is None:
            self._emitter = XdrEmitter(self.redis, self.settings.var_path / "spool",
                                       replicas=redis_conn.replica_acks(self.settings),
                                       wait_ms=self.settings.redis_replica_wait_ms)
        return self._emitter

    def export_cache_stats(self, every: float = 1.0) -> None:
        """Copy the record cache's counters into Prometheus, at most once per `every` s."""
        now = time.monotonic()
        if now - self._exported_at < every or self._directory is None:
            return
        self._exported_at = now
        stats = self._directory.cache.stats()
        for result in ("hits", "misses", "negative_hits", "stale_served", "errors", "evictions"):
            value = int(stats.get(result, 0))
            delta = value - self._exported.get(result, 0)
            if delta > 0:
                metrics.CACHE.labels(result).inc(delta)
            self._exported[result] = value
        book = self._directory.tariffs
        for event, value in (("read", book.loads), ("prefix_changed", book.updates)):
            delta = value - self._exported.get(event, 0)
            if delta > 0:
                metrics.TARIFFS.labels(event).inc(delta)
            self._exported[event] = value

    def gateway_uri(self, user: str) -> str:
        return f"sip:{user}@{self.settings.pstn_gateway}"

    def ivr_uri(self, user: str, worker: int) -> str:
        """The SIP URI of one IVR worker (they listen on consecutive ports)."""
        s = self.settings
        return f"sip:{user}@{s.ivr_address}:{s.ivr_sip_port + worker % s.ivr_workers}"

    def from_ivr(self, source_ip: str, source_port: int) -> bool:
        s = self.settings
        return source_ip == s.ivr_address and 0 <= source_port - s.ivr_sip_port < s.ivr_workers
