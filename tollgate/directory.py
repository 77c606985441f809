"""The one directory of provisioning data: accounts, aliases, customers, products,
applications and rates, plus the IVR's wrong-code counters.

Records are read through the per-process hot-path cache (hotpath.RecordCache) in front of
Redis; rates are loaded per tariff into a longest-prefix table. No KSR and no pjsua2 here:
Kamailio's workers (kemi.runtime) and the IVR (ivr.server) each hold one per process, call
poll() to apply invalidations, and tests call it against a real Redis.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry

import hotpath
from tollgate import keyspace, redis_conn
from tollgate.config import Settings
from tollgate.numbers import ACCESS_NUMBERS, ACCOUNTS, KeyIndex
from tollgate.tariffs import RATES, TariffBook

# a msgpack map as provisioning.loader writes it; the cache shares it: never change one
Record = Mapping[str, Any]


@dataclass(frozen=True)
class Identity:
    """Who an ID names: the account, and whether the ID itself may authenticate."""
    account: Record
    allow_auth: bool
    via_alias: str = ""


def fail_fast() -> Retry:
    """Two quick retries (50 ms apart) on a broken connection only: a restarted Redis
    (dead pooled sockets, then a moment of loading its data); never after a timeout:
    redis-py's default retries with exponential backoff would hold a single-threaded
    server (the IVR's loop of every session) for seconds."""
    return Retry(ConstantBackoff(0.05), 2, supported_errors=(redis.ConnectionError,))


class Directory:
    """Cached views of the provisioning records, one per process."""

    def __init__(self, client: redis.Redis, size: int = 100000, ttl: int = 300,
                 negative_ttl: int = 30, tariffs: TariffBook | None = None,
                 indexes: Mapping[str, KeyIndex] | None = None):
        self.client = client
        self.cache = hotpath.RecordCache(client, size=size, ttl=ttl, negative_ttl=negative_ttl)
        # rate-table, account and access-number changes come to us as well
        self.cache.watch = tuple(p.encode() for p in (keyspace.rates(""), ACCOUNTS,
                                                      ACCESS_NUMBERS))
        # a book (an index) loaded before the fork is shared until the first change it missed
        self.tariffs = (tariffs or TariffBook()).attach(client)
        # ID indexes by key prefix (tollgate.numbers); without one, every number is looked up
        self.indexes = dict(indexes or {})
        self._preloaded = tariffs is not None and tariffs.generation is not None or \
            any(i.generation is not None for i in self.indexes.values())

    @classmethod
    def from_settings(cls, settings: Settings) -> "Directory":
        """A directory on its own Redis connection with the settings' timeouts and cache."""
        client = redis_conn.client(settings, retry=fail_fast())
        return cls(client, size=settings.cache_size, ttl=settings.cache_ttl,
                   negative_ttl=settings.cache_negative_ttl)

    def poll(self) -> None:
        """Apply pending invalidations (pub/sub and generation counter); cheap when idle."""
        before = self.cache_generation()
        self.cache.poll()
        changed, self.cache.watched = self.cache.watched, []
        if self.cache_generation() != before:
            self._start_over()
        else:
            for message in changed:
                text = message.decode()
                index = next((i for p, i in self.indexes.items() if text.startswith(p)), None)
                if index is not None:
                    index.apply(text)
                elif text.startswith(RATES):
                    self.tariffs.apply(text)
        if self._preloaded and self.cache.connected:
            self._check_preloaded()

    def _start_over(self) -> None:
        """Messages were lost (or everything changed): forget the rate tables, read the
        ID indexes again (until one is read, every number is looked up)."""
        self.tariffs.clear()
        for index in self.indexes.values():
            index.forget()
            try:
                index.load(self.client)
            except (redis.ConnectionError, redis.TimeoutError):
                pass  # stays forgotten: lookups as before

    def _check_preloaded(self) -> None:
        """What was loaded before the fork holds what Redis had at its generation; writes
        between then and this process's subscription were not seen: start over if any."""
        self._preloaded = False
        raw = self.client.get(keyspace.GENERATION)
        now = int(raw) if raw is not None else 0
        if any(gen not in (None, now) for gen in
               [self.tariffs.generation, *(i.generation for i in self.indexes.values())]):
            self._start_over()

    def dialed_account(self, number: str) -> Record | None:
        """The account a dialed number is (an on-net call), None for any other number;
        no Redis round trip for numbers the account index does not hold."""
        index = self.indexes.get(ACCOUNTS)
        if not number or index is not None and not index.may_hold(number):
            return None
        return self.account(number)

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

    def app(self, app_id: int | str) -> Record | None:
        return self.cache.get(keyspace.app(app_id))

    def access_number(self, number: str) -> Record | None:
        """The voice application a dialed access number reaches, if it is one."""
        index = self.indexes.get(ACCESS_NUMBERS)
        if not number or index is not None and not index.may_hold(number):
            return None
        entry = self.cache.get(keyspace.access_number(number))
        return self.app(entry["app_id"]) if entry else None

    def brand_prompts(self, number: str, app: Record | None) -> str:
        """The brand prompt folder a caller of access number `number` hears first: the
        number's own, else its application's brand_prompts ("" for none)."""
        entry = self.cache.get(keyspace.access_number(number)) if number and app else None
        own = entry.get("brand_prompts") if entry and app and \
            str(entry.get("app_id")) == str(app.get("id")) else None
        return str(own or ((app or {}).get("settings") or {}).get("brand_prompts") or "")

    def domain_client(self, domain: str) -> Record | None:
        """The client whose SIP domain `domain` is (None: not a client's domain)."""
        entry = self.cache.get(keyspace.sip_domain(domain)) if domain else None
        return self.customer(entry["customer_id"]) if entry else None

    def extension(self, extension: str, domain: str) -> Identity | None:
        """The account an extension of a client's SIP domain names (alias ext@domain),
        only when the account is that client's."""
        if not extension or not domain:
            return None
        found = self.identity(f"{extension}@{domain}")
        if found is None or not found.via_alias:
            return None
        client = self.domain_client(domain)
        if client is None or client.get("id") != found.account.get("customer_id"):
            return None
        return found

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
        return Identity(account=account, allow_auth=bool(alias.get("allow_auth")),
                        via_alias=some_id)

    def rate(self, tariff_id: int, number: str) -> Record | None:
        """The longest-prefix rate record of `number` in the tariff (billing.classify's lookup)."""
        if not number.isdigit():
            return None
        return self.tariffs.lookup(tariff_id, number)

    # wrong auth codes keyed in from an account's phones: counters, never cached
    def failures(self, account_id: str) -> int:
        """Wrong codes entered for this caller account in the lockout window."""
        raw = self.client.get(keyspace.pin_failures(account_id))
        return int(raw) if raw is not None else 0

    def record_failure(self, account_id: str, ttl: int) -> int:
        """Count one wrong code; the window restarts with every failure."""
        pipe = self.client.pipeline()
        pipe.incr(keyspace.pin_failures(account_id))
        pipe.expire(keyspace.pin_failures(account_id), ttl)
        count, _ = pipe.execute()
        return int(count)
