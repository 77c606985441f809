"""xDR events leave the routing path here: XADD to Redis, or a local spool when Redis fails.

Each process appends to its own spool file under an exclusive lock; the replayer locks
the same file, sends every event, then truncates it, so no event is lost or sent twice
by a concurrent append.
"""
from __future__ import annotations

import fcntl
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from tollgate import keyspace, metrics

STREAM = keyspace.XDR_STREAM
_LEN = struct.Struct(">I")


class XdrEmitter:
    """Sends msgpack xDR events to the stream; spools them when Redis is unreachable."""

    def __init__(self, client: redis.Redis, spool_dir: Path, maxlen: int = 1_000_000,
                 replicas: int = 0, wait_ms: int = 50):
        self.client = client
        self.spool_dir = Path(spool_dir)
        self.maxlen = maxlen
        self.spooled = 0
        # With Sentinel (tollgate.redis_conn.replica_acks, docs/REDIS_HA.md) an event only
        # the master holds would be lost by a failover: it counts once `replicas` replicas
        # hold it (WAIT), else a copy is spooled as well (the writer bills a leg once
        # however often it arrives)
        self.replicas, self.wait_ms = replicas, wait_ms
        self.unreplicated = 0
        self._no_wait_until = 0.0

    def emit(self, packed: bytes) -> bool:
        """True when the event reached Redis, False when it went to the spool."""
        try:
            if self.replicas:
                self._emit_replicated(packed)
            else:
                self.client.xadd(STREAM, {"m": packed}, maxlen=self.maxlen, approximate=True)
            return True
        except (redis.ConnectionError, redis.TimeoutError):
            self._spool(packed)
            return False

    def _emit_replicated(self, packed: bytes) -> None:
        now = time.monotonic()
        if now < self._no_wait_until:  # replicas fell behind moments ago: no wait per event
            self.client.xadd(STREAM, {"m": packed}, maxlen=self.maxlen, approximate=True)
            acked = 0
        else:
            pipe = self.client.pipeline(transaction=False)
            pipe.xadd(STREAM, {"m": packed}, maxlen=self.maxlen, approximate=True)
            pipe.wait(self.replicas, self.wait_ms)
            acked = int(pipe.execute()[1])
        if acked < self.replicas:
            self._no_wait_until = now + 1.0
            self.unreplicated += 1
            metrics.XDR_EVENTS.labels("unreplicated").inc()
            self._spool(packed)

    def _spool_file(self) -> Path:
        return self.spool_dir / f"xdr.{os.getpid()}.spool"

    def _spool(self, packed: bytes) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        with open(self._spool_file(), "ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(_LEN.pack(len(packed)) + packed)
            f.flush()
            os.fsync(f.fileno())
        self.spooled += 1

    def replay(self) -> int:
        """Send every spooled event (any process's); returns how many were sent."""
        sent = 0
        if not self.spool_dir.is_dir():
            return 0
        paths = [p for p in sorted(self.spool_dir.glob("xdr.*.spool")) if p.stat().st_size]
        if paths and self.replicas and \
                self.client.wait(self.replicas, self.wait_ms) < self.replicas:
            return 0  # the copies of unreplicated events wait until a replica can take them
        for path in paths:
            sent += self._replay_file(path)
        return sent

    def _replay_file(self, path: Path) -> int:
        with open(path, "r+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            events = list(_read_frames(f.read()))
            if not events:
                return 0
            pipe = self.client.pipeline(transaction=False)
            for packed in events:
                pipe.xadd(STREAM, {"m": packed}, maxlen=self.maxlen, approximate=True)
            if self.replicas:
                pipe.wait(self.replicas, self.wait_ms)
            replies = pipe.execute()  # raises on failure: the file stays for the next try
            if self.replicas and int(replies[-1]) < self.replicas:
                return 0  # ... as it does when no replica took the events
            f.seek(0)
            f.truncate()
            os.fsync(f.fileno())
        return len(events)


def _read_frames(data: bytes) -> Iterator[bytes]:
    pos = 0
    while pos + _LEN.size <= len(data):
        (size,) = _LEN.unpack_from(data, pos)
        pos += _LEN.size
        if pos + size > len(data):
            break  # a torn last write (crash mid-append): the rest is unusable
        yield data[pos:pos + size]
        pos += size
