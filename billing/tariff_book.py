"""Tariffs held in memory for rating many xDRs without a query each: one longest-prefix
table per tariff, and each product's access code -> tariff.

Pure: provisioning/xdr_batch.py fills it from PostgreSQL and drops what the invalidation
channel names. A lookup answers exactly what the writer's per-event SQL answers
(`starts_with(number, prefix)`, longest prefix first), for any text, not only digits.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from billing.rating import Rate

# (price_first, price_next, interval_first, interval_next, connect_fee, free_seconds,
#  forbidden): thousands of prefixes share a handful of prices, so rates are shared
PriceKey = tuple[Decimal, Decimal, int, int, Decimal, int, bool]


class RateTable:
    """The rates of one tariff, by longest matching prefix."""

    __slots__ = ("currency", "_shared", "_by_length", "_lengths", "_size")

    def __init__(self, currency: str, rows: Iterable[tuple[str, PriceKey]]):
        self.currency = currency
        self._shared: dict[PriceKey, Rate] = {}
        self._by_length: dict[int, dict[str, Rate]] = {}
        self._size = 0
        for prefix, price in rows:
            self._put(prefix, price)
        self._lengths = sorted(self._by_length, reverse=True)

    def _put(self, prefix: str, price: PriceKey) -> None:
        rate = self._shared.get(price)
        if rate is None:  # validated once per distinct price, as Rate() would per row
            rate = self._shared[price] = Rate("", *price)
        table = self._by_length.setdefault(len(prefix), {})
        self._size += prefix not in table
        table[prefix] = rate

    def put(self, prefix: str, price: PriceKey) -> None:
        """Add or change one prefix's rate."""
        self._put(prefix, price)
        self._lengths = sorted(self._by_length, reverse=True)

    def remove(self, prefix: str) -> None:
        """Drop one prefix (nothing if it is not there)."""
        table = self._by_length.get(len(prefix))
        if table is not None and table.pop(prefix, None) is not None:
            self._size -= 1
            if not table:
                del self._by_length[len(prefix)]
                self._lengths = sorted(self._by_length, reverse=True)

    def find(self, number: str) -> tuple[str, Rate] | None:
        """(prefix, rate) of the longest prefix `number` starts with; None if none does.
        The rate's own prefix field is empty: the matched prefix is returned beside it."""
        size = len(number)
        for length in self._lengths:
            if length <= size:
                rate = self._by_length[length].get(number[:length])
                if rate is not None:
                    return number[:length], rate
        return None

    def __len__(self) -> int:
        return self._size


@dataclass(frozen=True)
class Found:
    """The rate that bills a leg: its tariff's currency and the matched prefix."""
    prefix: str
    rate: Rate
    currency: str


def find(entries: Mapping[str, int], tables: Mapping[int, RateTable], access_code: str,
         number: str) -> Found | None:
    """The rate of the tariff a product's entries give `access_code`, for `number`."""
    tariff = entries.get(access_code)
    if tariff is None:
        return None
    table = tables[tariff]
    hit = table.find(number)
    if hit is None:
        return None
    return Found(hit[0], hit[1], table.currency)
