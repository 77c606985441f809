"""Record lookups for routing: accounts, aliases, customers, products and rates.

Reads go through the per-process hot-path cache (hotpath.RecordCache) in front of Redis;
rates are loaded per tariff into a longest-prefix table. No KSR here: the KEMI steps and
the IVR both use it, and tests call it against a real Redis.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import redis

import hotpath
from tollgate import keyspace

Record = dict[str, Any]


@dataclass(frozen=True)
class Identity:
    """Who an ID names: the account, and whether the ID itself may authenticate."""
    account: Record
    allow_auth: bool
    via_alias: str = ""


class Directory:
    """Cached views of the provisioning records, one per process."""

    def __init__(self, client: redis.Redis, size: int = 100000, ttl: int = 300,
                 negative_ttl: int = 30):
        self.client = client
        self.cache = hotpath.RecordCache(client, size=size, ttl=ttl, negative_ttl=negative_ttl)
        self._tariffs: dict[int, Any] = {}
        self._tariff_gen: dict[int, int] = {}

    def poll(self) -> None:
        """Apply pending invalidations (pub/sub and generation counter); cheap when idle."""
        before = self.cache_generation()
        self.cache.poll()
        if self.cache_generation() != before:
            self._tariffs.clear()

    def cache_generation(self) -> int:
        return int(getattr(self.cache, "flushes", 0))

    def account(self, account_id: str) -> Record | None:
        return self.cache.get(keyspace.account(account_id))

    def alias(self, alias_id: str) -> Record | None:
        return self.cache.get(keyspace.alias(alias_id))

    def customer(self, customer_id: int) -> Record | None:
        return self.cache.get(keyspace.customer(customer_id))

    def product(self, product_id: int) -> Record | None:
        return self.cache.get(keyspace.product(product_id))

    def app(self, app_id: int) -> Record | None:
        return self.cache.get(keyspace.app(app_id))

    def identity(self, some_id: str) -> Identity | None:
        """An account ID names its account; an alias names its account (auth as flagged)."""
        account = self.account(some_id)
        if account is not None:
            return Identity(account=account, allow_auth=True)
        alias = self.alias(some_id)
        if alias is None:
            return None
        account = self.account(alias["account_id"])
        if account is None:
            return None
        return Identity(account=account, allow_auth=bool(alias.get("allow_auth")), via_alias=some_id)

    def rate(self, tariff_id: int, number: str) -> Record | None:
        """The longest-prefix rate record of `number` in the tariff (billing.classify's lookup)."""
        if not number.isdigit():
            return None
        return self._tariff_table(tariff_id).lookup(number)

    def _tariff_table(self, tariff_id: int):
        table = self._tariffs.get(tariff_id)
        if table is None:
            table = hotpath.PrefixTable()
            for prefix, packed in self.client.hgetall(keyspace.rates(tariff_id)).items():
                table.add(prefix.decode(), msgpack.unpackb(packed, raw=False))
            if hasattr(table, "build"):
                table.build()
            self._tariffs[tariff_id] = table
        return table
