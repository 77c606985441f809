"""Tariff rate tables in memory: each tariff's prefixes in one longest-prefix table.

A process loads each table once. Kamailio's main process preloads every tariff before it
forks its workers (kemi.main.mod_init -> preload_shared), so the workers share the
tables' pages instead of each reading 1M prefixes on its first call. After that a table
is kept current prefix by prefix: the loader announces a few changed prefixes of a tariff
as `tg:rates:<tariff>#<prefix>` (keyspace.rate_field); the worker re-reads only those into
a small overlay. A tariff rewritten as a whole, a flush (`*`, resync) or a lost message
(the generation counter) drops the table, which is read again on its next use.

The longest-prefix rule over a table and its changes is billing/prefix_rates.py's (the xDR
writer bills with the same one). Rates of a tariff repeat a few price combinations across
many prefixes: the table keeps each distinct combination once and adds the prefix back on
lookup.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import msgpack
import redis

from billing.prefix_rates import PrefixRates, is_prefix
from tollgate import keyspace

log = logging.getLogger("tollgate.tariffs")

Record = Mapping[str, Any]
Body = Mapping[str, Any]            # a rate record without its prefix, shared by prefixes
BodyKey = tuple[tuple[str, Any], ...]   # a body's items, sorted: one Body per distinct key
Table = PrefixRates[BodyKey, Body]
RATES = keyspace.rates("")          # the prefix of every rate-table key
OVERLAY_MAX = 20_000                # changed prefixes kept beside a table before it is reread
SCAN_COUNT = 10_000


class TariffBook:
    """The rate tables one process rates with."""

    def __init__(self, client: redis.Redis | None = None):
        self.client = client
        self.tables: dict[int, Table] = {}
        self.generation: int | None = None  # tg:gen when preloaded (None: not preloaded)
        self.loads = self.updates = self.preloaded = 0   # tables read since the preload,
        # prefixes changed in place, tables the preload read

    def attach(self, client: redis.Redis) -> TariffBook:
        """Use this process's own connection (the preloading one stays in the parent)."""
        self.client = client
        return self

    def clear(self) -> None:
        """Forget every table; each is read again on its next use."""
        self.tables.clear()
        self.generation = None

    def preload(self) -> int:
        """Read every tariff's table now; returns how many prefixes were loaded."""
        assert self.client is not None, "a book reads Redis through its client"
        raw = self.client.get(keyspace.GENERATION)
        generation = int(raw) if raw is not None else 0
        total = 0
        for key in self.client.scan_iter(match=RATES + "*", count=1000):
            name = key.decode() if isinstance(key, bytes) else str(key)
            tariff = name[len(RATES):]
            if tariff.isdigit():
                total += len(self.table(int(tariff)))
        self.generation = generation
        self.preloaded, self.loads = len(self.tables), 0
        return total

    def table(self, tariff_id: int) -> Table:
        """The tariff's table, read from Redis on first use."""
        table = self.tables.get(tariff_id)
        if table is None:
            table = self.tables[tariff_id] = self._read(tariff_id)
        return table

    def _read(self, tariff_id: int) -> Table:
        assert self.client is not None, "a book reads Redis through its client"
        table: Table = PrefixRates(_rows(self.client.hscan_iter(keyspace.rates(tariff_id),
                                                                count=SCAN_COUNT)),
                                   dict, OVERLAY_MAX)
        self.loads += 1
        return table

    def lookup(self, tariff_id: int, number: str) -> Record | None:
        """The longest-prefix rate record of `number` in the tariff, prefix included."""
        found = self.table(tariff_id).lookup_prefix(number)   # one call with no changes
        if found is None:
            return None
        prefix, body = found
        return {**body, "prefix": prefix}

    def apply(self, message: bytes | str) -> None:
        """One invalidation message about a rate table (a tariff, or one prefix of it)."""
        text = message.decode() if isinstance(message, bytes) else message
        name, _, prefix = text[len(RATES):].partition("#")
        if not name.isdigit():
            return
        tariff_id = int(name)
        if tariff_id not in self.tables:
            return  # read fresh on first use
        if "#" not in text:
            self.drop(tariff_id)
            return
        if not is_prefix(prefix):
            self.drop(tariff_id)   # not a prefix the loader writes: read the table again
            return
        assert self.client is not None, "a book reads Redis through its client"
        packed = self.client.hget(keyspace.rates(tariff_id), prefix)
        table = self.tables[tariff_id]
        if packed is None:
            table.remove(prefix)
        else:
            table.put(prefix, _key(msgpack.unpackb(packed, raw=False)))
        self.updates += 1
        if table.full:
            self.drop(tariff_id)

    def drop(self, tariff_id: int) -> None:
        self.tables.pop(tariff_id, None)


def _key(record: Record) -> BodyKey:
    """The record without its prefix, as the key of its shared body."""
    return tuple(sorted((k, v) for k, v in record.items() if k != "prefix"))


def _rows(fields: Iterable[tuple[Any, bytes]]) -> Iterator[tuple[str, BodyKey]]:
    for prefix, packed in fields:
        # a client made without decode_responses: field names are bytes
        assert isinstance(prefix, bytes), "TariffBook needs a bytes client"
        yield prefix.decode(), _key(msgpack.unpackb(packed, raw=False))


# Kamailio's main process fills this before forking (kemi.main); workers attach to it.
SHARED: TariffBook | None = None


def preload_shared(client: redis.Redis) -> TariffBook | None:
    """Load every tariff in this (parent) process for its children to share; None (each
    worker then reads tables on first use) when Redis cannot be read now."""
    global SHARED
    book = TariffBook(client)
    try:
        count = book.preload()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        log.warning("TARIFFS: not preloaded (%s); workers read each tariff on first use", exc)
        return None
    log.info("TARIFFS: %d tariffs, %d prefixes preloaded for the workers",
             len(book.tables), count)
    SHARED = book
    return book
