"""Rating: what a call of a given duration costs under one rate, and its inverse.

The formula (every amount a Decimal, prices per minute, intervals in seconds):

    d = answered duration in whole seconds; d <= 0 costs nothing (not answered).
    b = max(0, d - free_seconds)                      billable seconds
    n = 0                                  if b == 0
        interval_first                     if 0 < b <= interval_first
        interval_first + ceil((b - interval_first) / interval_next) * interval_next
                                           otherwise   (charged seconds)
    amount = connect_fee
             + (price_first * min(n, interval_first) + price_next * (n - interval_first)+) / 60

`amount` is computed exactly and rounded once, at the end, to 5 decimals ROUND_HALF_UP
(the numeric(18,5) of the database). The connect fee applies to every answered call,
even one that ends inside its free seconds.
"""
from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

QUANTUM = Decimal("0.00001")
ZERO = Decimal(0)
# a day: the longest call anyone is authorized for when money sets no limit
MAX_CALL_SECONDS = 86400
# enough digits for numeric(18,5) times a day of seconds without inexact results
_CTX = decimal.Context(prec=50, rounding=ROUND_HALF_UP)


class RateError(ValueError):
    """A rate record that cannot be used for rating."""


def money(value: object) -> Decimal:
    """A Decimal from decimal text, int or Decimal (never float: floats are inexact)."""
    if isinstance(value, float) or isinstance(value, bool):
        raise RateError(f"amount {value!r} must be decimal text, not {type(value).__name__}")
    try:
        result = Decimal(value)  # type: ignore[arg-type]
    except (decimal.InvalidOperation, TypeError, ValueError):
        raise RateError(f"amount {value!r} is not a decimal number") from None
    if not result.is_finite():
        raise RateError(f"amount {value!r} is not finite")
    return result


def quantize(amount: Decimal) -> Decimal:
    """Round to the 5 decimals of numeric(18,5), half up."""
    return amount.quantize(QUANTUM, rounding=ROUND_HALF_UP, context=_CTX)


@dataclass(frozen=True)
class Rate:
    """One destination prefix of a tariff."""
    prefix: str
    price_first: Decimal = ZERO
    price_next: Decimal = ZERO
    interval_first: int = 1
    interval_next: int = 1
    connect_fee: Decimal = ZERO
    free_seconds: int = 0
    forbidden: bool = False

    def __post_init__(self) -> None:
        for name in ("price_first", "price_next", "connect_fee"):
            value = money(getattr(self, name))
            if value < 0:
                raise RateError(f"rate {self.prefix!r}: {name} is negative")
            object.__setattr__(self, name, value)
        for name in ("interval_first", "interval_next"):
            if _whole(getattr(self, name), name, self.prefix) < 1:
                raise RateError(f"rate {self.prefix!r}: {name} must be at least 1 second")
        if _whole(self.free_seconds, "free_seconds", self.prefix) < 0:
            raise RateError(f"rate {self.prefix!r}: free_seconds is negative")

    @classmethod
    def from_map(cls, record: Mapping[str, Any]) -> "Rate":
        """A Rate from the msgpack map of a keyspace.rates field or a database row."""
        try:
            return cls(prefix=str(record.get("prefix", "")),
                       price_first=money(record.get("price_first", 0)),
                       price_next=money(record.get("price_next", 0)),
                       interval_first=record.get("interval_first", 1),
                       interval_next=record.get("interval_next", 1),
                       connect_fee=money(record.get("connect_fee", 0)),
                       free_seconds=record.get("free_seconds", 0),
                       forbidden=bool(record.get("forbidden", False)))
        except AttributeError:
            raise RateError(f"rate record {record!r} is not a map") from None

    def to_map(self) -> dict[str, str | int | bool]:
        """The msgpack-friendly map (amounts as decimal text)."""
        return {"prefix": self.prefix, "price_first": str(self.price_first),
                "price_next": str(self.price_next), "interval_first": self.interval_first,
                "interval_next": self.interval_next, "connect_fee": str(self.connect_fee),
                "free_seconds": self.free_seconds, "forbidden": self.forbidden}


def _whole(value: object, name: str, prefix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RateError(f"rate {prefix!r}: {name} {value!r} is not a whole number of seconds")
    return value


def is_paid(rate: Rate) -> bool:
    """True when any answered call at this rate costs money."""
    return rate.price_first > 0 or rate.price_next > 0 or rate.connect_fee > 0


def charged_seconds(rate: Rate, duration_s: int) -> int:
    """Billable seconds rounded up to the first and next intervals (free seconds excluded)."""
    billable = max(0, duration_s - rate.free_seconds)
    if billable == 0:
        return 0
    if billable <= rate.interval_first:
        return rate.interval_first
    nexts = -(-(billable - rate.interval_first) // rate.interval_next)
    return rate.interval_first + nexts * rate.interval_next


def amount_for(rate: Rate, seconds: int) -> Decimal:
    """The rounded amount for `seconds` already rounded to intervals, plus the connect fee."""
    first = min(seconds, rate.interval_first)
    rest = max(0, seconds - rate.interval_first)
    per_minute = _CTX.add(_CTX.multiply(rate.price_first, first),
                          _CTX.multiply(rate.price_next, rest))
    return quantize(_CTX.add(rate.connect_fee, _CTX.divide(per_minute, 60)))


def charge(rate: Rate, duration_s: int) -> Decimal:
    """What an answered call of `duration_s` seconds costs; 0 when it was not answered."""
    if duration_s <= 0:
        return ZERO.quantize(QUANTUM)
    return amount_for(rate, charged_seconds(rate, duration_s))


def first_charge(rate: Rate) -> Decimal:
    """The least an answered call can cost beyond its free seconds: fee plus first interval."""
    return charge(rate, rate.free_seconds + 1)


def affordable_seconds(rate: Rate, available: Decimal | None,
                       cap: int = MAX_CALL_SECONDS) -> int:
    """The longest duration whose charge is <= `available` (None = unlimited), at most `cap`.

    Exact inverse of charge: charge(d) <= available < charge(d + 1) unless d == cap.
    """
    if available is None:
        return cap
    available = money(available)
    if available < rate.connect_fee or cap <= 0:
        return 0
    if charge(rate, rate.free_seconds + 1) > available:
        return min(rate.free_seconds, cap)
    if rate.price_next == 0:
        return cap
    nexts = _affordable_nexts(rate, available, cap // rate.interval_next + 1)
    return min(rate.free_seconds + rate.interval_first + nexts * rate.interval_next, cap)


def _affordable_nexts(rate: Rate, available: Decimal, limit: int) -> int:
    """The most next-intervals (after the first) within `available`, at most `limit`."""
    base = rate.connect_fee + rate.price_first * rate.interval_first / 60
    step = rate.price_next * rate.interval_next / 60
    # the estimate ignores rounding; walk to the exact boundary from there
    nexts = min(limit, max(0, int(_CTX.divide(available - base, step))))

    def cost(k: int) -> Decimal:
        return amount_for(rate, rate.interval_first + k * rate.interval_next)

    while nexts > 0 and cost(nexts) > available:
        nexts -= 1
    while nexts < limit and cost(nexts + 1) <= available:
        nexts += 1
    return nexts
