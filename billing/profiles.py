"""A virtual PBX client's rating profiles (virtual-pbx-client.txt, "List of Rating
profiles"): which product bills a call of the client's accounts.

A client without rating profiles is billed by each account's own product. A client with
them is billed only by its active ones (activation time passed, expiry not reached),
newest activation first: the first whose product rates the call bills it; when none can,
the call cannot be billed and is refused. A rate that forbids the destination rates it
(forbidden stays forbidden: an older profile never opens what a newer one closes).

Pure: Kamailio (kemi/calls.py, the cached records) and the xDR writer (SQL) both ask it,
so a call is billed by the product that authorized it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

# product id -> True when that product has a rate for the call (its destination and
# access code)
Rates = Callable[[int], bool]
CANNOT_BILL = (403, "Call cannot be billed")


@lru_cache(maxsize=4096)
def _moment(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def moment(value: object) -> datetime | None:
    """A profile's time (datetime, or ISO text as records hold it); None if unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return _moment(str(value)) if value else None


def active(profiles: Iterable[Mapping[str, Any]], now: datetime) -> list[int]:
    """The products of the profiles active at `now`, newest activation first (an
    unreadable activation is never active; an unreadable expiry has expired)."""
    live = []
    for profile in profiles:
        start, end = moment(profile.get("activation")), profile.get("expiry")
        if start is None or start > now:
            continue
        stop = moment(end) if end else None
        if end and (stop is None or stop <= now):
            continue
        live.append((start, int(profile["product_id"])))
    return [product for _, product in sorted(live, key=lambda p: p[0], reverse=True)]


def product_for(customer: Mapping[str, Any], account_product: int | None, now: datetime,
                rates: Rates) -> int | None:
    """The product that bills the call: the account's when the client has no rating
    profiles, else the newest active profile's that rates it; None when none can."""
    profiles = customer.get("rating_profiles") or ()
    if not profiles:
        return account_product
    for product in active(profiles, now):
        if rates(product):
            return product
    return None
