"""Tariff rate tables in memory: each tariff's prefixes in one longest-prefix table.

A process loads each table once. Kamailio's main process preloads every tariff before it
forks its workers (kemi.main.mod_init -> preload_shared), so the workers share the
tables' pages instead of each reading 1M prefixes on its first call. After that a table
is kept current prefix by prefix: the loader announces a few changed prefixes of a tariff
as `tg:rates:<tariff>#<prefix>` (keyspace.rate_field); the worker re-reads only those into
a small overlay. A tariff rewritten as a whole, a flush (`*`, resync) or a lost message
(the generation counter) drops the table, which is read again on its next use.

Rates of a tariff repeat a few price combinations across many prefixes: the table keeps
each distinct combination once and adds the prefix back on lookup.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgpack
import redis

import hotpath
from tollgate import keyspace

log = logging.getLogger("tollgate.tariffs")

Record = Mapping[str, Any]
Body = Mapping[str, Any]            # a rate record without its prefix, shared by prefixes
Found = tuple[str, Body]
RATES = keyspace.rates("")          # the prefix of every rate-table key
OVERLAY_MAX = 20_000                # changed prefixes kept beside a table before it is reread
SCAN_COUNT = 10_000


class TariffBook:
    """The rate tables one process rates with."""

    def __init__(self, client: redis.Redis | None = None):
        self.client = client
        self.tables: dict[int, hotpath.PrefixTable[Body]] = {}
        self.changed: dict[int, dict[str, Body | None]] = {}   # prefix -> body, None: gone
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
        self.changed.clear()
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

    def table(self, tariff_id: int) -> hotpath.PrefixTable[Body]:
        """The tariff's table, read from Redis on first use."""
        table = self.tables.get(tariff_id)
        if table is None:
            table = self._read(tariff_id)
            self.tables[tariff_id] = table
            self.changed.pop(tariff_id, None)
        return table

    def _read(self, tariff_id: int) -> hotpath.PrefixTable[Body]:
        assert self.client is not None, "a book reads Redis through its client"
        bodies: dict[tuple[Any, ...], Body] = {}
        table: hotpath.PrefixTable[Body] = hotpath.PrefixTable()
        for prefix, packed in self.client.hscan_iter(keyspace.rates(tariff_id),
                                                     count=SCAN_COUNT):
            # a client made without decode_responses: field names are bytes
            assert isinstance(prefix, bytes), "TariffBook needs a bytes client"
            table.add(prefix.decode(), _shared(bodies, msgpack.unpackb(packed, raw=False)))
        if hasattr(table, "build"):
            table.build()
        self.loads += 1
        return table

    def lookup(self, tariff_id: int, number: str) -> Record | None:
        """The longest-prefix rate record of `number` in the tariff, prefix included."""
        table = self.table(tariff_id)
        found = table.lookup_prefix(number)
        changed = self.changed.get(tariff_id)
        if changed:
            found = _with_changes(table, changed, number, found)
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
        assert self.client is not None, "a book reads Redis through its client"
        packed = self.client.hget(keyspace.rates(tariff_id), prefix)
        changed = self.changed.setdefault(tariff_id, {})
        changed[prefix] = None if packed is None else _body(msgpack.unpackb(packed, raw=False))
        self.updates += 1
        if len(changed) > OVERLAY_MAX:
            self.drop(tariff_id)

    def drop(self, tariff_id: int) -> None:
        self.tables.pop(tariff_id, None)
        self.changed.pop(tariff_id, None)


def _body(record: Record) -> Body:
    return {k: v for k, v in record.items() if k != "prefix"}


def _shared(bodies: dict[tuple[Any, ...], Body], record: Record) -> Body:
    """The record without its prefix, one object per distinct combination."""
    body = _body(record)
    key = tuple(sorted(body.items()))
    return bodies.setdefault(key, body)


def _with_changes(table: hotpath.PrefixTable[Body], changed: Mapping[str, Body | None],
                  number: str, found: Found | None) -> Found | None:
    """The longest prefix of `number` over the table with the changed prefixes applied: a
    changed prefix wins at its length; a removed one lets a shorter prefix match."""
    for end in range(len(number), -1, -1):
        prefix = number[:end]
        if prefix in changed:
            body = changed[prefix]
            if body is not None:
                return prefix, body
            if found is not None and found[0] == prefix:  # the table's match is gone
                found = table.lookup_prefix(prefix[:-1]) if prefix else None
            continue
        if found is not None and len(found[0]) == end:
            return found
    return None


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
