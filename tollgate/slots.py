"""The external calls a client has in progress, in Redis: billing/slots.lua takes a slot
atomically (max_calls across every Kamailio worker and node), dialog events give it back,
and a crashed node's slots expire with the longest call it could have had.
"""
from __future__ import annotations

from functools import cache
from importlib import resources

import redis

from tollgate import keyspace

# a slot outlives the longest authorized call by this much (setup, BYE in flight)
TTL_MARGIN_S = 120


@cache
def _script() -> str:
    return resources.files("billing").joinpath("slots.lua").read_text(encoding="utf-8")


class Slots:
    """Take and give back call slots on one Redis connection."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self._take = client.register_script(_script())

    def take(self, customer_id: object, call_id: str, most: int, longest_s: int) -> bool:
        """One slot for `call_id` unless the client has `most` calls already (0: no limit)."""
        ttl_ms = (max(longest_s, 1) + TTL_MARGIN_S) * 1000
        taken, _ = self._take(keys=[keyspace.call_slots(customer_id)],
                              args=[call_id, most, ttl_ms])
        return bool(taken == 1)

    def give_back(self, customer_id: object, call_id: str) -> None:
        self.client.hdel(keyspace.call_slots(customer_id), call_id)

    def busy(self, customer_id: object) -> int:
        """Calls the client has now (expired slots included until the next take)."""
        return int(self.client.hlen(keyspace.call_slots(customer_id)))
