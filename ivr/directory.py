"""Record lookups of the IVR: accounts, aliases, applications and PIN failure counters.

Plain redis + msgpack over the keys of tollgate.keyspace for now; the same small API can sit
on hotpath.RecordCache later. Keys are built from ids, never formatted into commands.
"""
from __future__ import annotations

import msgpack
import redis

from tollgate import keyspace
from tollgate.config import Settings


class Directory:
    def __init__(self, client: redis.Redis):
        self.redis = client

    @classmethod
    def from_settings(cls, settings: Settings) -> "Directory":
        timeout = settings.redis_timeout_ms / 1000
        return cls(redis.Redis(host=settings.redis_host, port=settings.redis_port,
                               db=settings.redis_db, socket_timeout=timeout,
                               socket_connect_timeout=timeout))

    def _record(self, key: str) -> dict | None:
        raw = self.redis.get(key)
        return msgpack.unpackb(raw, raw=False) if raw is not None else None

    def account(self, account_id: str) -> dict | None:
        return self._record(keyspace.account(account_id))

    def alias(self, alias_id: str) -> dict | None:
        return self._record(keyspace.alias(alias_id))

    def app(self, app_id: str) -> dict | None:
        return self._record(keyspace.app(app_id))

    def customer(self, customer_id: object) -> dict | None:
        return self._record(keyspace.customer(customer_id))

    def failures(self, account_id: str) -> int:
        """Wrong codes entered for this caller account in the lockout window."""
        raw = self.redis.get(keyspace.pin_failures(account_id))
        return int(raw) if raw is not None else 0

    def record_failure(self, account_id: str, ttl: int) -> int:
        """Count one wrong code; the window restarts with every failure."""
        pipe = self.redis.pipeline()
        pipe.incr(keyspace.pin_failures(account_id))
        pipe.expire(keyspace.pin_failures(account_id), ttl)
        count, _ = pipe.execute()
        return int(count)
