"""Pure-Python twin of hotpath._cache: the reference the Cython RecordCache is tested against."""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgpack
import redis

from hotpath._backend import CONNECTION_ERRORS, RedisBackend
from hotpath.errors import BackendUnavailable
from tollgate import keyspace

__all__ = ["RecordCache", "BackendUnavailable"]

Key = str | bytes
Record = Mapping[str, Any]


class _Entry:
    __slots__ = ("value", "expires", "negative", "ref")

    def __init__(self, value: Record | None, expires: float, negative: bool):
        self.value = value
        self.expires = expires
        self.negative = negative
        self.ref = False


class RecordCache:
    """Bounded in-process cache of msgpack records stored under Redis string keys."""

    def __init__(self, redis: redis.Redis | Callable[[], redis.Redis], size: int = 100_000,
                 ttl: float = 30.0, negative_ttl: float = 5.0, *,
                 gen_check_interval: float = 1.0, retry_interval: float = 1.0,
                 channel: str = keyspace.INVALIDATE, gen_key: str = keyspace.GENERATION,
                 clock: Callable[[], float] | None = None):
        if size < 1 or ttl <= 0 or negative_ttl < 0 or gen_check_interval < 0 or retry_interval < 0:
            raise ValueError("size >= 1, ttl > 0 and the other intervals >= 0 are required")
        self._backend = RedisBackend(redis, channel, gen_key)
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._clock = clock or time.monotonic
        self.size, self.ttl, self.negative_ttl = size, float(ttl), float(negative_ttl)
        self.gen_check_interval = float(gen_check_interval)
        self.retry_interval = float(retry_interval)
        self.connected = False
        self._gen: int | None = None
        self._behind = 0   # a generation Redis showed ahead of the messages at the last check
        self._next_gen_check = 0.0
        self.watch: tuple[bytes, ...] = ()  # keys starting with one of these are also kept
        self.watched: list[bytes] = []      # ... here, until the owner takes them
        self._retry_at = 0.0
        self.hits = self.misses = self.negative_hits = self.stale_served = 0
        self.evictions = self.errors = self.invalidations = self.flushes = 0

    def get(self, key: Key) -> Record | None:
        """The record under `key`, None when Redis has no such key; BackendUnavailable if
        unknowable."""
        e = self._entries.get(key)
        if e is not None and e.expires > self._clock():
            e.ref = True
            if e.negative:
                self.negative_hits += 1
            else:
                self.hits += 1
            return e.value
        return self._load(key)

    def _load(self, key: Key) -> Record | None:
        now = self._clock()
        self.misses += 1
        if not self.connected and now >= self._retry_at:
            self._connect(now)
        if now < self._retry_at:  # Redis failed moments ago: do not wait on it per request
            return self._stale(key)
        try:
            raw = self._backend.fetch(key)
        except CONNECTION_ERRORS:
            self._fail(now)
            return self._stale(key)
        if raw is None:
            if self.negative_ttl > 0:
                self._store(key, None, True, now + self.negative_ttl)
            return None
        value: Record = msgpack.unpackb(raw, raw=False)
        self._store(key, value, False, now + self.ttl)
        return value

    def _stale(self, key: Key) -> Record | None:
        # Only a real record vouches for a caller; an expired "absent" answer does not.
        e = self._entries.get(key)
        if e is not None and not e.negative:
            self.stale_served += 1
            return e.value
        raise BackendUnavailable(f"Redis unreachable and {key!r} not cached")

    def _store(self, key: Key, value: Record | None, negative: bool, expires: float) -> None:
        e = self._entries.get(key)
        if e is not None:  # refresh in place: keeps its queue position, counts as used
            e.value, e.expires, e.negative, e.ref = value, expires, negative, True
            return
        if len(self._entries) >= self.size:
            self._evict()
        self._entries[key] = _Entry(value, expires, negative)

    def _evict(self) -> None:
        # CLOCK / second chance: the oldest entry goes unless it was hit since it last came up.
        while True:
            key, e = self._entries.popitem(last=False)
            if not e.ref:
                self.evictions += 1
                return
            e.ref = False
            self._entries[key] = e

    def _fail(self, now: float) -> None:
        self.errors += 1
        self._retry_at = now + self.retry_interval
        self.connected = False
        self._backend.drop_subscription()

    def _connect(self, now: float) -> bool:
        try:
            self._backend.connect()
            gen = self._backend.generation()
        except CONNECTION_ERRORS:
            self._fail(now)
            return False
        # Invalidations published while unsubscribed are lost; a moved generation says so.
        if gen != self._gen and (self._entries or self._gen is not None):
            self.invalidate_all()
        self._gen, self._behind = gen, 0
        self._next_gen_check = now + self.gen_check_interval
        self.connected = True
        return True

    def connect(self) -> bool:
        """Open the Redis connection and subscribe (Kamailio child_init); False if Redis is down."""
        return self._connect(self._clock())

    def poll(self) -> int:
        """Apply pending invalidations without blocking; returns how many messages were applied."""
        now = self._clock()
        if not self.connected:
            if now < self._retry_at or not self._connect(now):
                return 0
        try:
            keys: Sequence[Key] = self._backend.drain() if self._backend.pending() else ()
            for key in keys:
                self._apply(key)
            if now >= self._next_gen_check:
                self._next_gen_check = now + self.gen_check_interval
                self._check_generation(self._backend.generation())
        except CONNECTION_ERRORS:
            self._fail(now)
            return 0
        return len(keys)

    def _apply(self, key: Key) -> None:
        """One invalidation message: `*` drops everything, `#<n>` says generation n was
        published in full, anything else is a key."""
        raw = key if isinstance(key, bytes) else key.encode()
        if raw == b"*":
            self.invalidate_all()
        elif raw[:1] == b"#":
            self._gen = max(self._gen or 0, int(raw[1:] or 0))
        else:
            self.invalidate(raw)
            if self.watch and raw.startswith(self.watch):
                self.watched.append(raw)

    def _check_generation(self, gen: int) -> None:
        """Per-key messages move our generation with every write; Redis's counter only
        says messages were lost when it stays ahead of them for a whole check interval
        (a message can still be in flight at the first look), or when it went back
        (Redis lost its data)."""
        mine = self._gen or 0
        if gen < mine or (self._behind and mine < self._behind):
            self._gen, self._behind = gen, 0
            self.invalidate_all()
        else:
            self._behind = gen if gen > mine else 0

    def invalidate(self, key: Key) -> bool:
        """Drop `key` (bytes and str spellings both); True if something was cached."""
        other = key.decode("utf-8", "replace") if isinstance(key, bytes) else key.encode()
        found = self._entries.pop(key, None) is not None
        found = self._entries.pop(other, None) is not None or found
        self.invalidations += found
        return found

    def invalidate_all(self) -> None:
        """Drop every entry."""
        self._entries.clear()
        self.flushes += 1

    def stats(self) -> dict[str, int]:
        """Counters and the current size, for metrics."""
        return {"hits": self.hits, "misses": self.misses, "negative_hits": self.negative_hits,
                "stale_served": self.stale_served, "evictions": self.evictions,
                "errors": self.errors, "invalidations": self.invalidations,
                "flushes": self.flushes, "size": len(self._entries)}

    def __len__(self) -> int:
        return len(self._entries)
