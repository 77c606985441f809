"""The money rule's table of cases: one table, two implementations, same expectations.

tests/unit/test_billing_money.py applies billing.money.hold (Python) to each case;
tests/integration/test_reservations.py writes the same balances and holds into a real
Redis and runs billing/money.lua. Both must give the case's Outcome exactly.

Amounts of a call at the demo's rate (0.10 to connect, 0.06/min, 60/60): its minimum,
the first minute, is 0.16; a call capped at 2 minutes costs 0.22, at 2 hours 7.30.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal as D

from billing.money import ACCOUNT, CUSTOMER, DAILY, Outcome

CALL = "call"              # the call asking to hold funds
ACCOUNT_ID = "17785551210"
CUSTOMER_ID = 1
DAY = "2026-12-01"         # the client's day the call starts on (an external call)


@dataclass(frozen=True)
class Case:
    """Balances (None: key missing), limits (None: unlimited), the holds already there
    (call-id, amount; an entry under CALL is this call's own earlier hold), the request,
    and what the rule answers."""
    name: str
    expect: Outcome
    amount: str
    minimum: str = "0.16"
    model: str = "debit"
    balance: str | None = "0"
    limit: str | None = None
    customer_balance: str | None = "0"
    customer_limit: str | None = None
    held: tuple[tuple[str, str], ...] = ()
    customer_held: tuple[tuple[str, str], ...] = ()
    expired: tuple[tuple[str, str], ...] = ()      # on both hashes, past their expiry
    daily_limit: str | None = None                 # the client's max daily usage
    spent: str | None = None                       # its spend today (None: none written)
    daily_held: tuple[tuple[str, str], ...] = ()   # its other external calls in progress

    def account(self) -> dict:
        return {"id": ACCOUNT_ID, "customer_id": CUSTOMER_ID, "billing_model": self.model,
                "credit_limit": self.limit}

    def customer(self) -> dict:
        return {"id": CUSTOMER_ID, "credit_limit": self.customer_limit,
                "max_daily_usage": self.daily_limit, "timezone": "UTC"}

    def entries(self, scope: str, now_ms: int) -> dict[str, str]:
        """The reservation hash of one scope as Redis stores it: micro-units:expiry ms."""
        live = {ACCOUNT: self.held, CUSTOMER: self.customer_held, DAILY: self.daily_held}[scope]
        values = {call: f"{int(D(a) * 100000)}:{now_ms + 60000}" for call, a in live}
        values.update({call: f"{int(D(a) * 100000)}:{now_ms - 1000}"
                       for call, a in self.expired})
        return values


def held(amount: str, available: str | None) -> Outcome:
    return Outcome(True, None if available is None else D(available), reserved=D(amount))


def refused(available: str, scope: str = ACCOUNT) -> Outcome:
    return Outcome(False, D(available), scope)


def unknown(scope: str) -> Outcome:
    return Outcome(False, None, scope, unknown_balance=True)


CASES = [
    # debit: available = balance - held
    Case("debit covers the whole capped call", held("1.00", "1.00"), "1.00", balance="1.00"),
    Case("debit holds no more than the call", held("0.70", "5.5"), "0.70", balance="5.5"),
    Case("debit holds what is left", held("0.45999", "0.45999"), "7.30", balance="0.45999"),
    Case("debit exactly the minimum", held("0.16", "0.16"), "7.30", balance="0.16"),
    Case("debit a micro-unit short", refused("0.15999"), "7.30", balance="0.15999"),
    Case("debit overdrawn", refused("-2"), "0.22", balance="-2"),
    Case("debit other calls hold some", held("0.5", "0.5"), "7.30", balance="1",
         held=(("c2", "0.3"), ("c3", "0.2"))),
    Case("debit other calls hold too much", refused("0.15"), "0.22", balance="1",
         held=(("c2", "0.85"),)),
    Case("debit own earlier hold does not count", held("1", "1"), "7.30", balance="1",
         held=((CALL, "0.8"),)),
    Case("debit expired holds do not count", held("0.22", "1"), "0.22", balance="1",
         expired=(("crashed", "1"),)),
    Case("debit ignores the customer's credit", held("0.22", "5"), "0.22", balance="5",
         customer_balance="99.99", customer_limit="100", customer_held=(("c9", "1"),)),
    Case("debit ignores a missing customer balance", held("0.22", "5"), "0.22",
         balance="5", customer_balance=None),
    Case("debit balance missing", unknown(ACCOUNT), "0.22", balance=None),
    Case("all or nothing: minimum = amount", refused("0.5"), "0.6", minimum="0.6",
         balance="1", held=(("c2", "0.5"),)),
    Case("free first interval: minimum 0", held("0", "0"), "0.5", minimum="0", balance="0"),
    Case("free first interval, overdrawn", refused("-0.00001"), "0.5", minimum="0",
         balance="-0.00001"),
    Case("cap below the first interval", held("0.10", "1"), "0.10", balance="1"),
    # credit: available = limit - balance - held, for the account and for the customer
    Case("credit, customer unlimited", held("7.30", "40"), "7.30", model="credit",
         balance="10", limit="50"),
    Case("credit, customer is the smaller bound", held("2.5", "2.5"), "3", model="credit",
         balance="10", limit="50", customer_balance="97.5", customer_limit="100"),
    Case("credit, customer's holds exhaust it", refused("0", CUSTOMER), "3", model="credit",
         balance="10", limit="50", customer_balance="97.5", customer_limit="100",
         held=(("c2", "2.5"),), customer_held=(("c2", "2.5"),)),
    Case("credit, other accounts' holds on the customer", held("1", "1"), "3",
         model="credit", balance="0", limit="50", customer_balance="90",
         customer_limit="100", customer_held=(("c7", "4"), ("c8", "5"))),
    Case("credit, account is the smaller bound", refused("0.1"), "0.22", model="credit",
         balance="49.9", limit="50", customer_limit="100"),
    Case("credit, a tie refuses on the account", refused("0.1"), "0.22", model="credit",
         balance="9.9", limit="10", customer_balance="99.9", customer_limit="100"),
    Case("credit over its limit", refused("-10"), "0.22", model="credit", balance="60",
         limit="50"),
    Case("credit limit zero", refused("0"), "0.22", model="credit", balance="0", limit="0"),
    Case("credit, a payment makes the balance negative", held("0.22", "51"), "0.22",
         model="credit", balance="-1", limit="50"),
    Case("credit account unlimited, customer limited", held("0.5", "0.5"), "7.30",
         model="credit", customer_balance="0", customer_limit="0.5"),
    Case("credit unlimited everywhere", held("7.30", None), "7.30", model="credit"),
    Case("credit unlimited needs no balance", held("7.30", None), "7.30", model="credit",
         balance=None, customer_balance=None),
    Case("credit balance missing", unknown(ACCOUNT), "0.22", model="credit", balance=None,
         limit="50", customer_limit="100"),
    Case("credit customer balance missing", unknown(CUSTOMER), "0.22", model="credit",
         balance="0", customer_balance=None, customer_limit="100"),
    Case("credit expired holds on the customer do not count", held("0.22", "100"), "0.22",
         model="credit", customer_limit="100", expired=(("crashed", "100"),)),
    # max daily usage: available today = limit - spent today - held by the client's calls
    Case("daily, nothing spent yet today", held("7.30", "10"), "7.30", balance="50",
         daily_limit="10"),
    Case("daily is the smaller bound", held("1.5", "1.5"), "7.30", balance="50",
         daily_limit="10", spent="8.5"),
    Case("daily reached", refused("0", DAILY), "0.22", balance="50", daily_limit="10",
         spent="10"),
    Case("daily, other calls hold the rest", refused("0.1", DAILY), "0.22", balance="50",
         daily_limit="10", spent="5", daily_held=(("c2", "4.9"),)),
    Case("daily, own earlier hold does not count", held("0.22", "1"), "0.22", balance="50",
         daily_limit="10", spent="9", daily_held=((CALL, "1"),)),
    Case("daily, expired holds do not count", held("0.22", "5"), "0.22", balance="50",
         daily_limit="10", spent="5", expired=(("crashed", "5"),)),
    Case("daily, the account is still the smaller bound", held("2", "2"), "7.30",
         balance="2", daily_limit="10", spent="1"),
    Case("daily, credit customer smaller", held("0.5", "0.5"), "7.30", model="credit",
         customer_balance="99.5", customer_limit="100", daily_limit="10", spent="1"),
    Case("daily limit zero refuses every paid call", refused("0", DAILY), "0.22",
         balance="50", daily_limit="0"),
    Case("daily, a debit balance missing still refuses on the account", unknown(ACCOUNT),
         "0.22", balance=None, daily_limit="10"),
]
