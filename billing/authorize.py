"""Authorization of a payer: available funds per the money model, minus reservations.

Debit account: available = balance - its reservations. Credit account: available =
credit_limit - balance - its reservations (NULL limit = unlimited), and also at most the
customer's credit_limit - customer balance - the reservations of the customer's credit
accounts (NULL = unlimited). The smaller bound wins; None means no bound at all.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from billing.classify import Decision
from billing.rating import MAX_CALL_SECONDS, ZERO, affordable_seconds, charge, first_charge, money

DEBIT = "debit"
CREDIT = "credit"
INSUFFICIENT = (402, "Insufficient funds")


@dataclass(frozen=True)
class Funds:
    """Everything the money model needs about one payer, as Decimals."""
    billing_model: str
    balance: Decimal
    credit_limit: Decimal | None = None
    customer_balance: Decimal = ZERO
    customer_credit_limit: Decimal | None = None
    reserved_account: Decimal = ZERO
    reserved_customer: Decimal = ZERO

    @classmethod
    def from_records(cls, account: Mapping, customer: Mapping, balance: object,
                     customer_balance: object = 0, reserved_account: object = 0,
                     reserved_customer: object = 0) -> "Funds":
        """Funds from the account/customer maps plus the balances kept under keyspace.balance."""
        return cls(billing_model=account.get("billing_model") or DEBIT,
                   balance=money(balance),
                   credit_limit=_limit(account.get("credit_limit")),
                   customer_balance=money(customer_balance),
                   customer_credit_limit=_limit(customer.get("credit_limit")),
                   reserved_account=money(reserved_account),
                   reserved_customer=money(reserved_customer))


def _limit(value: object) -> Decimal | None:
    return None if value is None or value == "" else money(value)


def account_available(funds: Funds) -> Decimal | None:
    """What the account itself still allows (None = unlimited)."""
    if funds.billing_model == DEBIT:
        return funds.balance - funds.reserved_account
    if funds.billing_model != CREDIT:
        raise ValueError(f"unknown billing model {funds.billing_model!r}")
    if funds.credit_limit is None:
        return None
    return funds.credit_limit - funds.balance - funds.reserved_account


def customer_available(funds: Funds) -> Decimal | None:
    """What the customer's credit limit still allows its credit accounts (None = unlimited)."""
    if funds.billing_model == DEBIT or funds.customer_credit_limit is None:
        return None  # a debit account spends its own money, not the customer's credit
    return funds.customer_credit_limit - funds.customer_balance - funds.reserved_customer


def available(funds: Funds) -> Decimal | None:
    """The smaller of the account and customer bounds (None = unlimited)."""
    bounds = [b for b in (account_available(funds), customer_available(funds)) if b is not None]
    return min(bounds) if bounds else None


def authorize(decision: Decision, funds: Funds, cap: int = MAX_CALL_SECONDS) -> Decision:
    """The decision with max_duration and reserve set, or 402 when funds don't cover it."""
    return authorize_available(decision, available(funds), cap)


def authorize_available(decision: Decision, funds_available: Decimal | None,
                        cap: int = MAX_CALL_SECONDS) -> Decision:
    """As authorize(), given the available amount (None = unlimited) directly."""
    if not decision.ok or not decision.paid:
        return decision
    rate = decision.rate
    assert rate is not None, "a paid decision carries its rate"
    if funds_available is not None and funds_available < first_charge(rate):
        return Decision(*INSUFFICIENT, payer=decision.payer, customer_id=decision.customer_id)
    seconds = affordable_seconds(rate, funds_available, cap)
    return replace(decision, max_duration=seconds, reserve=charge(rate, seconds))


def fits(funds_available: Decimal | None, amount: Decimal) -> bool:
    """True when a reservation of `amount` fits (the rule the Redis script applies)."""
    return funds_available is None or funds_available >= amount
