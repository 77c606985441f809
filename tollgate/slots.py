"""The external calls a client has in progress, in Redis: billing/slots.lua takes a slot
atomically (max_calls across every Kamailio worker and node), dialog events give it back,
and a crashed node's slots expire with the longest call it could have had. A paid call
takes its slot with its funds (tollgate.reservations); this takes one for a free call
and for a call in from the gateway.
"""
from __future__ import annotations

from functools import cache

import redis

from billing import money
from tollgate import keyspace

# a slot outlives the longest authorized call by this much (setup, BYE in flight)
TTL_MARGIN_S = 120

# KEYS: the client's slot hash; ARGV: call-id, max calls, ttl ms.
# Returns {1 taken | 0 refused, calls in progress besides this one}.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local most, busy = tonumber(ARGV[2]), busy_slots(KEYS[1], ARGV[1], now)
if most > 0 and busy >= most then return {0, busy} end
hold_slot(KEYS[1], ARGV[1], now, tonumber(ARGV[3]))
return {1, busy}"""


@cache
def _script() -> str:
    return money.lua_source("slots.lua") + TAKE


def ttl_ms(longest_s: int) -> int:
    """How long a slot lives: the longest authorized call and a margin."""
    return (max(longest_s, 1) + TTL_MARGIN_S) * 1000


class Slots:
    """Take and give back call slots on one Redis connection."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self._take = client.register_script(_script())

    def take(self, customer_id: object, call_id: str, most: int, longest_s: int) -> bool:
        """One slot for `call_id` unless the client has `most` calls already (0: no limit)."""
        taken, _ = self._take(keys=[keyspace.call_slots(customer_id)],
                              args=[call_id, most, ttl_ms(longest_s)])
        return bool(taken == 1)

    def give_back(self, customer_id: object, call_id: str) -> None:
        self.client.hdel(keyspace.call_slots(customer_id), call_id)

    def busy(self, customer_id: object) -> int:
        """Calls the client has now (expired slots included until the next take)."""
        return int(self.client.hlen(keyspace.call_slots(customer_id)))
