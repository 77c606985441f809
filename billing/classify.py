"""Classify an INVITE from plain records into a Decision the KEMI adapter carries out.

Whether a call is paid is decided by rating (the caller's product, longest prefix), never
by a hand-kept list: on-net calls inside one customer are free, a free rate goes straight
through, a paid rate needs funds (and the auth code where the phone calls via a
pass-through IVR that authorizes paid calls), and no rate or a forbidden one refuses.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, TypeVar

from billing.rating import Rate, RateError, is_paid

# routes the adapter knows
ONNET = "onnet"
PSTN = "pstn"
IVR = "ivr"
PROCEED = 200
PASS_THROUGH = "pass_through"
PLAIN = ""  # the access code of plain calls
_NUMBER = re.compile(r"\+?[0-9]{1,32}")

# (tariff id, dialed number) -> the longest-prefix rate of that tariff (or its map), or None
RateLookup = Callable[[int, str], "Rate | Mapping[str, Any] | None"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class Decision:
    """The verdict on one INVITE: proceed on `route` (code 200) or refuse with code/reason."""
    code: int
    reason: str
    route: str = ""
    payer: str = ""              # account ID billed for this leg
    customer_id: int | None = None
    rate: Rate | None = None
    paid: bool = False           # needs authorize() before it may proceed
    max_duration: int | None = None   # hard cap in seconds; None = no limit
    reserve: Decimal | None = None    # amount to reserve for this call

    @property
    def ok(self) -> bool:
        return self.code == PROCEED


def refuse(code: int, reason: str) -> Decision:
    """A refusal with its SIP status and reason phrase."""
    return Decision(code=code, reason=reason)


NO_RATING = refuse(403, "No rating for destination")


def longest_prefix(table: Mapping[str, _T], number: str) -> _T | None:
    """The value under the longest key of `table` that starts `number` ("" matches all)."""
    for end in range(len(number), -1, -1):
        value = table.get(number[:end])
        if value is not None:
            return value
    return None


def table_lookup(tables: Callable[[int], Mapping[str, Rate | Mapping[str, Any]] | None]
                 ) -> RateLookup:
    """A RateLookup over whole tariff tables (prefix -> rate), e.g. a keyspace.rates hash."""
    def lookup(tariff_id: int, number: str) -> Rate | Mapping[str, Any] | None:
        table = tables(tariff_id)
        return None if table is None else longest_prefix(table, number)
    return lookup


def tariff_for(product: Mapping[str, Any], access_code: str = PLAIN) -> int | None:
    """The tariff of the product's rating entry for `access_code`, if any."""
    for entry in product.get("rating") or ():
        if entry.get("access_code", PLAIN) == access_code:
            return int(entry["tariff_id"])
    return None


def find_rate(product: Mapping[str, Any], number: str, lookup: RateLookup,
              access_code: str = PLAIN) -> Rate | None:
    """The rate the product applies to `number` under `access_code`, or None."""
    tariff = tariff_for(product, access_code)
    if tariff is None:
        return None
    found = lookup(tariff, number)
    if found is None or isinstance(found, Rate):
        return found
    return Rate.from_map(found)


def expired(account: Mapping[str, Any], now: datetime | None = None) -> bool:
    """True when the account has an expiry time in the past."""
    text = account.get("expires")
    if not text:
        return False
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return True  # unreadable expiry: fail closed
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when <= (now or datetime.now(timezone.utc))


def check_caller(caller: Mapping[str, Any], customer: Mapping[str, Any],
                 now: datetime | None = None) -> Decision | None:
    """A refusal when the caller or its customer may not call at all."""
    if caller.get("blocked"):
        return refuse(403, "Account blocked")
    if expired(caller, now):
        return refuse(403, "Account expired")
    if customer.get("blocked"):
        return refuse(403, "Customer blocked")
    return None


def classify(caller: Mapping[str, Any], customer: Mapping[str, Any],
             product: Mapping[str, Any], dialed: str, lookup: RateLookup,
             callee: Mapping[str, Any] | None = None, app: Mapping[str, Any] | None = None,
             from_ivr: bool = False, access_code: str = PLAIN,
             now: datetime | None = None, no_rate: Decision = NO_RATING,
             priced: bool = True) -> Decision:
    """Classify a call by `caller` to `dialed` (`callee`: the account it reaches on-net).

    `app` is the caller's call-via-IVR voice application; `from_ivr` marks the toll leg the
    IVR originates after collecting the code (the caller there is already the payer).
    `no_rate` is the refusal when `product` has no rate for the call. A client whose calls
    are not `priced` (billing method none) still needs a rate that allows the destination,
    but holds and pays nothing.
    """
    refusal = check_caller(caller, customer, now)
    if refusal:
        return refusal
    payer, customer_id = str(caller["id"]), caller.get("customer_id")
    if callee is not None and callee.get("customer_id") == customer_id:
        return Decision(PROCEED, "On-net", ONNET, payer=payer, customer_id=customer_id)
    if callee is None and not _NUMBER.fullmatch(dialed or ""):
        return refuse(404, "Unknown number")
    try:
        rate = find_rate(product, dialed.lstrip("+"), lookup, access_code)
    except (RateError, KeyError, TypeError, ValueError):
        # fail closed: broken rating data must never become a free call
        return refuse(503, "Rating unavailable")
    route = ONNET if callee is not None else PSTN
    if rate is None:
        return no_rate
    if rate.forbidden:
        return refuse(403, "Forbidden destination")
    if not is_paid(rate):
        return Decision(PROCEED, "Free", route, rate=rate, payer=payer, customer_id=customer_id)
    if not priced:
        return Decision(PROCEED, "Not priced", route, rate=rate, payer=payer,
                        customer_id=customer_id)
    if not from_ivr and authorizes_paid_calls(app):
        return Decision(PROCEED, "Auth code required", IVR, payer=payer, customer_id=customer_id)
    return Decision(PROCEED, "Paid", route, rate=rate, paid=True, payer=payer,
                    customer_id=customer_id)


def authorizes_paid_calls(app: Mapping[str, Any] | None) -> bool:
    """True for a pass-through IVR with "Authorize paid calls" on."""
    if not app or app.get("type") != PASS_THROUGH:
        return False
    return bool((app.get("settings") or {}).get("authorize_paid_calls", False))
