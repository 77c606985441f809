"""Tariffs held in memory for rating many xDRs without a query each: one longest-prefix
table per tariff, and each product's access code -> tariff.

Pure: provisioning/xdr_batch.py fills it from PostgreSQL and puts or removes what the
invalidation channel names. The longest-prefix rule itself is billing/prefix_rates.py's,
shared with routing; a lookup answers exactly what the writer's per-event SQL answers
(`starts_with(number, prefix)`, longest prefix first), for any text, not only digits.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from billing.prefix_rates import CHANGES_MAX, PrefixRates
from billing.rating import Rate

# (price_first, price_next, interval_first, interval_next, connect_fee, free_seconds,
#  forbidden): thousands of prefixes share a handful of prices, so rates are shared
PriceKey = tuple[Decimal, Decimal, int, int, Decimal, int, bool]


def _rate(price: PriceKey) -> Rate:
    """Validated once per distinct price, as Rate() would per row."""
    return Rate("", *price)


class RateTable(PrefixRates[PriceKey, Rate]):
    """The rates of one tariff, by longest matching prefix (find()); changed prefixes are
    folded into the table past changes_max, never read again from PostgreSQL."""

    __slots__ = ("currency",)

    def __init__(self, currency: str, rows: Iterable[tuple[str, PriceKey]],
                 changes_max: int = CHANGES_MAX):
        super().__init__(rows, _rate, changes_max)
        self.currency = currency

    def put(self, prefix: str, price: PriceKey) -> None:
        """Add or change one prefix's rate."""
        super().put(prefix, price)
        if self.full:
            self.compact()

    def remove(self, prefix: str) -> None:
        """Drop one prefix (nothing if it is not there)."""
        super().remove(prefix)
        if self.full:
            self.compact()


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
    hit = table.find(number)   # the rate's own prefix field is empty: the match is beside it
    if hit is None:
        return None
    return Found(hit[0], hit[1], table.currency)
