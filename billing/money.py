"""The money rule: what a payer may spend now, and what a paid call holds of it.

Stated once here in Python; billing/money.lua is its twin for the one step that must be
atomic in Redis (tollgate.reservations runs it), and tests/money_cases.py is the table of
cases both are tested against.

A payer is bounded by up to two balances (docs/DATA.md, "Money"), and an external call
of a client with a max daily usage by a third, the client's spend of the day:

    debit account    account:  balance - held           customer: not involved
    credit account   account:  credit_limit - balance - held    (NULL limit: no bound)
                     customer: credit_limit - balance - held    (NULL limit: no bound)
    either           daily:    max_daily_usage - spent today - held  (NULL: no bound)

`held` is what the live reservations of other calls hold on that balance (the daily
bound's holds are every external call of the client in progress). available is
the smaller bound (None when nothing bounds the payer); a bounding balance nobody can
read refuses the call, never lets it through free (a day's spend nobody wrote yet is
zero: the xDR writer writes it with every external call it bills). A paid call needs
at least its first interval's charge (the minimum sufficient time) and holds
min(available, the charge of the call at its hard cap); its max duration is what the
held amount affords.

Redis holds amounts as integer micro-units (1 unit = 100000 micro): numeric(18,5) has 5
decimals, so the conversion is exact both ways, and Lua's doubles stay exact for
integers up to 2**53 (amounts up to 90 billion units).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from billing.classify import Decision
from billing.rating import (
    MAX_CALL_SECONDS,
    QUANTUM,
    ZERO,
    affordable_seconds,
    charge,
    first_charge,
    money,
)

INSUFFICIENT = (402, "Insufficient funds")
UNAVAILABLE = (503, "Balance unavailable")
DAILY_REACHED = (403, "Max daily usage reached")
MAX_CALLS = (403, "Max calls reached")
MICRO = 100000
ACCOUNT, CUSTOMER, DAILY = "account", "customer", "daily"
SCOPES = (ACCOUNT, CUSTOMER, DAILY)
# the Lua script refuses a paid call of a client at its max calls before any money rule
CALLS = "calls"

# How one balance takes part (the Lua script's modes). An unlimited balance still records
# the call's hold, so the holds count as soon as a limit is set. A daily bound is a credit
# bound whose "balance" is the day's spend, zero when not written yet.
DEBIT, CREDIT, UNLIMITED, SKIP = "debit", "credit", "unlimited", "skip"
# a reservation hash value: "<micro-units>:<expiry unix ms>" (tollgate.keyspace.reservations)
_ENTRY = re.compile(r"(-?\d+):(\d+)")


def to_micro(amount: Decimal | str) -> int:
    """Exact integer micro-units of an amount with at most 5 decimals."""
    micro = money(amount) * MICRO
    if micro != micro.to_integral_value():
        raise ValueError(f"amount {amount} has more than 5 decimals")
    return int(micro)


def from_micro(micro: int) -> Decimal:
    """The Decimal amount of integer micro-units."""
    return (Decimal(int(micro)) / MICRO).quantize(QUANTUM)


NOTHING = from_micro(0)


@dataclass(frozen=True)
class Bound:
    """How one balance (the account's or its customer's) limits spending."""
    mode: str
    limit: Decimal | None = None

    def allows(self, balance: Decimal, held: Decimal) -> Decimal | None:
        """What this balance still allows, given what other calls hold (None: no bound)."""
        if self.mode == DEBIT:
            return balance - held
        if self.mode in (CREDIT, DAILY):
            assert self.limit is not None, "a credit bound has its limit"
            return self.limit - balance - held
        return None

    def applies(self) -> bool:
        """True when the balance bounds the call (read, or zero when a day's spend)."""
        return self.mode in (DEBIT, CREDIT, DAILY)


def daily(customer: Mapping[str, Any], external: bool = True) -> Bound:
    """The client's max daily usage as a bound on an external call (SKIP: none)."""
    limit = customer.get("max_daily_usage")
    if not external or limit is None or limit == "":
        return Bound(SKIP)
    return Bound(DAILY, money(limit))


def bounds(account: Mapping[str, Any], customer: Mapping[str, Any]) -> tuple[Bound, Bound]:
    """The account's and the customer's bounds for this payer (records or database rows)."""
    model = account.get("billing_model") or DEBIT
    if model == DEBIT:
        return Bound(DEBIT), Bound(SKIP)
    if model != CREDIT:
        raise ValueError(f"unknown billing model {model!r}")
    return _credit(account.get("credit_limit")), _credit(customer.get("credit_limit"))


def _credit(limit: object) -> Bound:
    if limit is None or limit == "":
        return Bound(UNLIMITED)
    return Bound(CREDIT, money(limit))


@dataclass(frozen=True)
class Funds:
    """A payer's balances as the rule reads them, account, customer and (for an external
    call) the client's day; a balance of None is one nobody can vouch for (its Redis key is
    missing), except a day's spend, which is then zero."""
    bounds: tuple[Bound, ...]
    balances: tuple[Decimal | None, ...]
    held: tuple[Decimal, ...] = (ZERO, ZERO, ZERO)


@dataclass(frozen=True)
class Outcome:
    """A hold attempt: ok, the available amount seen (None = unlimited), the scope that
    refused or whose balance is unknown, and the amount held for the call (zero unless ok)."""
    ok: bool
    available: Decimal | None
    scope: str = ""
    unknown_balance: bool = False
    reserved: Decimal = NOTHING


class UnknownBalance(LookupError):
    """A bounding balance that nobody can vouch for."""

    def __init__(self, scope: str):
        super().__init__(f"{scope} balance unknown")
        self.scope = scope


def least(funds: Funds) -> tuple[Decimal | None, str]:
    """The smaller bound and its scope (the account's on a tie); (None, "") when unbounded."""
    found: tuple[Decimal | None, str] = (None, "")
    for scope, bound, balance, held in zip(SCOPES, funds.bounds, funds.balances, funds.held):
        if not bound.applies():
            continue
        if balance is None and bound.mode == DAILY:
            balance = ZERO  # nothing spent yet today
        if balance is None:
            raise UnknownBalance(scope)
        allows = bound.allows(balance, held)
        if allows is not None and (found[0] is None or allows < found[0]):
            found = (allows, scope)
    return found


def available(funds: Funds) -> Decimal | None:
    """What the payer may still spend (None = unlimited); UnknownBalance when unreadable."""
    return least(funds)[0]


def hold(funds: Funds, amount: Decimal, minimum: Decimal) -> Outcome:
    """Hold min(available, `amount`) unless available is below `minimum`; an unbounded
    payer holds `amount`. billing/money.lua does exactly this, atomically, in Redis."""
    try:
        most, scope = least(funds)
    except UnknownBalance as unknown:
        return Outcome(False, None, unknown.scope, unknown_balance=True)
    if most is None:
        return Outcome(True, None, reserved=from_micro(to_micro(amount)))
    if most < minimum:
        return Outcome(False, most, scope)
    return Outcome(True, most, reserved=from_micro(to_micro(min(most, amount))))


def live_held(entries: Mapping[Any, Any], now_ms: int, call_id: str = "") -> Decimal:
    """What one reservation hash holds for calls other than `call_id` (a retransmission
    replaces its own hold), expired and malformed entries skipped, as the Lua sums it."""
    total = 0
    for field, value in entries.items():
        field = field.decode() if isinstance(field, bytes) else field
        value = value.decode() if isinstance(value, bytes) else value
        entry = _ENTRY.fullmatch(value)
        if entry and int(entry[2]) > now_ms and field != call_id:
            total += int(entry[1])
    return from_micro(total)


# --- a paid call: the minimum sufficient time, the hard cap, the decision ---------------

def authorize(decision: Decision, take: Callable[[Decimal, Decimal], Outcome],
              cap: int = MAX_CALL_SECONDS) -> Decision:
    """A paid decision with max_duration and reserve set, or a refusal (402, 503).

    `take(amount, minimum)` holds the funds: hold() over known Funds, or the Lua script
    in Redis (tollgate.reservations). `amount` is what a call of `cap` seconds costs and
    `minimum` its first interval's charge. max_duration is what the held amount affords,
    which may be less than one interval's price short of that amount.
    """
    if not decision.ok or not decision.paid:
        return decision
    rate = decision.rate
    assert rate is not None, "a paid decision carries its rate"
    held = take(charge(rate, cap), first_charge(rate))
    if held.unknown_balance:
        return Decision(*UNAVAILABLE, payer=decision.payer)
    if not held.ok and held.scope == CALLS:
        return Decision(*MAX_CALLS, payer=decision.payer, customer_id=decision.customer_id)
    if not held.ok and held.scope == DAILY:
        return Decision(*DAILY_REACHED, payer=decision.payer, customer_id=decision.customer_id)
    if not held.ok:
        return Decision(*INSUFFICIENT, payer=decision.payer, customer_id=decision.customer_id)
    return replace(decision, max_duration=affordable_seconds(rate, held.reserved, cap),
                   reserve=held.reserved)


@cache
def rerated_cap(granted: int | None, before: int, elapsed: float) -> int | None:
    """The cap, in seconds from the answer, of a connected call rated anew (a call-back's
    leg A under CALLBACK_FAIL): what the hold under the new rate affords from the start,
    cut `before` seconds short. None when that does not outlast the seconds already
    talked: the new rate would bill more than the funds hold, so the call keeps its rate."""
    if granted is None:
        return None
    cap = granted - before
    return cap if cap > elapsed else None


def lua_script() -> str:
    """The source of billing/money.lua after billing/slots.lua's functions (read once per
    process): a paid call takes its client's call slot in the same round trip."""
    return lua_source("slots.lua") + "\n" + lua_source("money.lua")


def lua_source(name: str) -> str:
    """One Lua file of the billing package."""
    return resources.files("billing").joinpath(name).read_text(encoding="utf-8")
