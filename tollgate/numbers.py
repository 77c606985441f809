"""Which dialed numbers may be the platform's own (an account: on-net; an access number:
a voice application), known in memory.

Every call asks whether the dialed number is an access number, then an account. For PSTN
numbers the answer is "no" and, numbers rarely repeating, the record cache misses and asks
Redis each time. An index holds every ID of one kind: a number outside it is none,
without a round trip; one inside it is looked up as before. Kamailio's main process loads
the indexes before the fork (shared by the workers, as the tariffs); new IDs reach them
from the invalidation channel (their key's message), and a lost message (a cache flush)
makes the worker read them again. Deleted IDs stay in until then: they only cost a lookup.
"""
from __future__ import annotations

import redis

from tollgate import keyspace

ACCOUNTS = keyspace.account("")              # the prefix of every account key
ACCESS_NUMBERS = keyspace.access_number("")  # ... and of every access number's
SCAN_COUNT = 10_000


class KeyIndex:
    """Every ID under one key prefix; None (not loaded) lets every number through."""

    def __init__(self, prefix: str = ACCOUNTS) -> None:
        self.prefix = prefix
        self.ids: set[str] | None = None
        self.generation: int | None = None   # tg:gen when loaded
        self.loads = 0

    def load(self, client: redis.Redis) -> int:
        """Read every account ID now; returns how many."""
        raw = client.get(keyspace.GENERATION)
        ids = set()
        for key in client.scan_iter(match=self.prefix + "*", count=SCAN_COUNT):
            name = key.decode() if isinstance(key, bytes) else str(key)
            ids.add(name[len(self.prefix):])
        self.ids, self.generation = ids, int(raw) if raw is not None else 0
        self.loads += 1
        return len(ids)

    def may_hold(self, number: str) -> bool:
        """False only when `number` is surely not one."""
        return self.ids is None or number in self.ids

    def apply(self, message: bytes | str) -> None:
        """A key of ours was written: its ID may now be one."""
        if self.ids is not None:
            text = message.decode() if isinstance(message, bytes) else message
            self.ids.add(text[len(self.prefix):])

    def forget(self) -> None:
        """Messages were lost: until read again, every number goes to the lookup."""
        self.ids, self.generation = None, None


# Kamailio's main process fills these before forking (kemi.runtime); workers share them.
SHARED: dict[str, KeyIndex] = {}


def preload_shared(client: redis.Redis) -> dict[str, KeyIndex]:
    """Load the account and access-number indexes in this (parent) process for its
    children; none when Redis is down (every number is then looked up)."""
    try:
        for prefix in (ACCOUNTS, ACCESS_NUMBERS):
            index = KeyIndex(prefix)
            index.load(client)
            SHARED[prefix] = index
    except (redis.ConnectionError, redis.TimeoutError):
        SHARED.clear()
    return SHARED
