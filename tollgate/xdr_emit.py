"""xDR events leave the routing path here: XADD to Redis, or a local spool when Redis fails.

Each process appends to its own spool file under an exclusive lock; the replayer locks
the same file, sends every event, then truncates it, so no event is lost or sent twice
by a concurrent append.
"""
from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import redis

from tollgate import keyspace

STREAM = keyspace.XDR_STREAM
_LEN = struct.Struct(">I")


class XdrEmitter:
    """Sends msgpack xDR events to the stream; spools them when Redis is unreachable."""

    def __init__(self, client: redis.Redis, spool_dir: Path, maxlen: int = 1_000_000):
        self.client = client
        self.spool_dir = Path(spool_dir)
        self.maxlen = maxlen
        self.spooled = 0

    def emit(self, packed: bytes) -> bool:
        """True when the event reached Redis, False when it went to the spool."""
        try:
            self.client.xadd(STREAM, {"m": packed}, maxlen=self.maxlen, approximate=True)
            return True
        except (redis.ConnectionError, redis.TimeoutError):
            self._spool(packed)
            return False

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
        for path in sorted(self.spool_dir.glob("xdr.*.spool")):
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
            pipe.execute()  # raises on failure: the file stays for the next try
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
