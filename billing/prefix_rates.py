"""Which rate of a tariff bills a number: its longest matching prefix. The one implementation,
used by routing (tollgate/tariffs.py, read from Redis in Kamailio) and by the xDR writer
(billing/tariff_book.py, read from PostgreSQL).

A tariff is read once into a read-only hotpath.PrefixTable; the prefixes changed or removed
after that go into a small overlay beside it, and a lookup is the longest match over both.
Past a bound the owner either drops the table (routing reads it again) or folds the overlay
into a new table (compact()). Pure: no Redis, no PostgreSQL.

Prefixes are ASCII digits ('' matches every number). hotpath tables hold up to 20 digits;
the schema allows 32, so the few longer ones stay in the overlay for good.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

import hotpath
from hotpath._prefix_py import MAX_DIGITS

K = TypeVar("K", bound=Hashable)    # a price as read: one value is made per distinct K
V = TypeVar("V")
Found = tuple[str, V]
CHANGES_MAX = 20_000                # changed prefixes kept beside a table (see full)
DIGITS = re.compile(r"[0-9]*")      # the leading digits of a number: what a prefix can match


class PrefixRates(Generic[K, V]):
    """The rates of one tariff by longest matching prefix: a read-only table as read, plus
    the prefixes changed since. Each distinct price (K) is kept once, as make(K)."""

    __slots__ = ("lookup_prefix", "changes_max", "_base", "_changes", "_long", "_make",
                 "_shared", "_size", "_top")

    # (prefix, value) of the longest prefix of an all-digit number ('' included), None when
    # none matches or the number has a non-digit: hotpath.PrefixTable.lookup_prefix. An
    # attribute, not a method: with no overlay it is the table's own (C) lookup, so a
    # routing lookup stays one call; with one, a partial of _lookup_over (no cycle to self).
    lookup_prefix: Callable[[str], Found[V] | None]

    def __init__(self, rows: Iterable[tuple[str, K]], make: Callable[[K], V],
                 changes_max: int = CHANGES_MAX):
        self.changes_max = changes_max
        self._make = make
        self._shared: dict[K, V] = {}
        self._changes: dict[str, V | None] = {}   # prefix -> value, None: removed
        self._long = 0                             # prefixes the table cannot hold
        self._top = MAX_DIGITS                     # the longest prefix there can be
        base: hotpath.PrefixTable[V] = hotpath.PrefixTable()
        add, shared, changes = base.add, self._shared, self._changes
        for prefix, key in rows:
            value = shared.get(key)
            if value is None:   # made once per distinct price
                value = shared[key] = make(key)
            if len(prefix) > MAX_DIGITS:
                _check(prefix)
                self._long += prefix not in changes
                self._top = max(self._top, len(prefix))
                changes[prefix] = value
            else:
                add(prefix, value)
        self._base = base.build()
        self._size = len(base) + self._long
        self._set_lookup()

    def put(self, prefix: str, key: K) -> None:
        """Add or change one prefix's rate."""
        _check(prefix)
        value = self._shared.get(key)
        if value is None:
            value = self._shared[key] = self._make(key)
        self._size += not self._has(prefix)
        if len(prefix) > MAX_DIGITS:
            self._long += prefix not in self._changes
            self._top = max(self._top, len(prefix))
        self._changes[prefix] = value
        self._set_lookup()

    def remove(self, prefix: str) -> None:
        """Drop one prefix (nothing if it is not there)."""
        _check(prefix)
        self._size -= self._has(prefix)
        if len(prefix) > MAX_DIGITS:   # never in the table: simply forgotten
            self._long -= self._changes.pop(prefix, None) is not None
        else:
            self._changes[prefix] = None
        self._set_lookup()

    @property
    def full(self) -> bool:
        """More changed prefixes than changes_max beside the table: drop it or compact()."""
        return len(self._changes) - self._long > self.changes_max

    def compact(self) -> None:
        """Read the table and its changes into a new table (the overlay empties)."""
        changes = self._changes
        base: hotpath.PrefixTable[V] = hotpath.PrefixTable()
        for prefix, value in self._base.items():
            if prefix not in changes:
                base.add(prefix, value)
        kept: dict[str, V | None] = {}
        for prefix, changed in changes.items():
            if changed is None:
                continue
            if len(prefix) > MAX_DIGITS:
                kept[prefix] = changed
            else:
                base.add(prefix, changed)
        self._base, self._changes = base.build(), kept
        self._top = max([MAX_DIGITS, *map(len, kept)])
        self._set_lookup()

    def find(self, number: str) -> Found[V] | None:
        """(prefix, value) of the longest prefix `number` starts with, for any text: what
        SQL's starts_with(number, prefix) picks longest first. A number with a non-digit is
        matched by its leading digits ('' still matches it)."""
        found = self.lookup_prefix(number)
        if found is None and not (number.isascii() and number.isdigit()):
            match = DIGITS.match(number)
            assert match is not None, "[0-9]* matches every text"
            found = self.lookup_prefix(match.group())
        return found

    def __len__(self) -> int:
        return self._size

    def _has(self, prefix: str) -> bool:
        if prefix in self._changes:
            return self._changes[prefix] is not None
        if len(prefix) > MAX_DIGITS:
            return False
        found = self._base.lookup_prefix(prefix)
        return found is not None and len(found[0]) == len(prefix)

    def _set_lookup(self) -> None:
        if self._changes:
            self.lookup_prefix = functools.partial(_lookup_over, self._base, self._changes,
                                                   self._top)
        else:
            self.lookup_prefix = self._base.lookup_prefix


def _lookup_over(base: hotpath.PrefixTable[V], changes: dict[str, V | None], top: int,
                 number: str) -> Found[V] | None:
    """The longest prefix of `number` over the table with the changes applied: a changed
    prefix wins at its length; a removed one lets a shorter prefix match. `top`: the
    longest prefix there can be."""
    found = base.lookup_prefix(number)
    if found is None and number and not (number.isascii() and number.isdigit()):
        return None   # as the table alone answers
    for end in range(min(len(number), top), -1, -1):
        prefix = number[:end]
        if prefix in changes:
            value = changes[prefix]
            if value is not None:
                return prefix, value
            if found is not None and len(found[0]) == end:  # the table's match is gone
                found = base.lookup_prefix(prefix[:-1]) if end else None
            continue
        if found is not None and len(found[0]) == end:
            return found
    return None


def is_prefix(text: str) -> bool:
    """Whether `text` can be a prefix: ASCII digits, or '' (provisioning/validate.py)."""
    return text == "" or (text.isascii() and text.isdigit())


def _check(prefix: str) -> None:
    if not is_prefix(prefix):
        raise ValueError(f"a prefix is digits only: {prefix!r}")
