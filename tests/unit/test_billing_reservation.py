"""Reservation arguments: exact micro-unit conversion and the money model's scopes."""
from decimal import Decimal as D

import pytest

from billing.classify import Decision
from billing.rating import Rate
from billing.reservation import (CREDIT, DEBIT, SKIP, UNLIMITED, Scope, from_micro, scopes,
                                 to_micro)
from tollgate.reservations import TTL_MARGIN_S, Reservations

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


class _FakeClient:
    """Stands in for redis.Redis: the reserve script answers with a canned reply."""

    def __init__(self, reply):
        self.reply, self.calls = reply, []

    def register_script(self, source):
        def run(keys, args):
            self.calls.append((keys, args))
            return self.reply
        return run


RATE = Rate("1", price_first=D("0.06"), price_next=D("0.06"), interval_first=60,
            interval_next=60, connect_fee=D("0.10"))
PAID = Decision(200, "Paid", "pstn", payer="17785551209", customer_id=1, rate=RATE, paid=True)
DEBIT_ACCOUNT = {"id": "17785551209", "customer_id": 1, "billing_model": "debit"}


def test_authorize_sends_the_full_and_minimum_amounts_in_one_call():
    client = _FakeClient([1, 1000000, b"", 45999])
    granted = Reservations(client).authorize("c1", PAID, DEBIT_ACCOUNT, {}, cap=7200)
    (keys, args), = client.calls
    assert keys == ["tg:bal:account:17785551209", "tg:resv:account:17785551209",
                    "tg:bal:customer:1", "tg:resv:customer:1"]
    # full = 0.10 + 120 minutes x 0.06 = 7.30; minimum = 0.10 + 0.06; ttl = cap + margin
    assert args == ["c1", "730000", (7200 + TTL_MARGIN_S) * 1000, "debit", "0", "skip", "0",
                    "16000"]
    assert (granted.code, granted.max_duration, granted.reserve) == (200, 300, D("0.45999"))


@pytest.mark.parametrize("reply, code", [([0, 15999, b"account", 0], 402),
                                         ([-1, None, b"account", 0], 503)])
def test_authorize_refusals(reply, code):
    refused = Reservations(_FakeClient(reply)).authorize("c1", PAID, DEBIT_ACCOUNT, {})
    assert (refused.code, refused.max_duration, refused.reserve) == (code, None, None)


def test_authorize_leaves_free_calls_alone():
    client = _FakeClient([1, None, b"", 0])
    free = Decision(200, "Free", "onnet", payer="17785551209", customer_id=1)
    assert Reservations(client).authorize("c1", free, DEBIT_ACCOUNT, {}) is free
    assert client.calls == []
