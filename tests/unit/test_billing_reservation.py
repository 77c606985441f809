"""Reservation arguments: exact micro-unit conversion and the money model's scopes."""
from decimal import Decimal as D

import pytest

from billing.reservation import (CREDIT, DEBIT, SKIP, UNLIMITED, Scope, from_micro, scopes,
                                 to_micro)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("amount, micro", [("0", 0), ("1", 100000), ("0.00001", 1),
                                           ("-2.5", -250000), ("12345678.12345", 1234567812345)])
def test_micro_roundtrip_is_exact(amount, micro):
    assert to_micro(D(amount)) == micro
    assert from_micro(micro) == D(amount)


def test_more_than_five_decimals_is_refused():
    with pytest.raises(ValueError):
        to_micro(D("0.000001"))


def test_scopes_follow_the_money_model():
    assert scopes({"billing_model": "debit"}, {"credit_limit": "1"}) == (Scope(DEBIT), Scope(SKIP))
    assert scopes({"billing_model": "credit", "credit_limit": "50"}, {"credit_limit": None}) == (
        Scope(CREDIT, 5000000), Scope(UNLIMITED))
    assert scopes({"billing_model": "credit", "credit_limit": None}, {"credit_limit": "0.5"}) == (
        Scope(UNLIMITED), Scope(CREDIT, 50000))
