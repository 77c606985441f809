"""tollgate.reservations without Redis: the script's keys and arguments, its replies."""
from decimal import Decimal as D

import pytest

from billing.classify import Decision
from billing.rating import Rate
from tollgate.reservations import TTL_MARGIN_S, Reservations

pytestmark = pytest.mark.unit


class _FakeClient:
    """Stands in for redis.Redis: the hold script answers with a canned reply."""

    def __init__(self, reply):
        self.reply, self.calls = reply, []

    def register_script(self, source):
        assert "HSET" in source  # billing/money.lua, read from its file

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
    assert keys[:4] == ["tg:bal:account:17785551209", "tg:resv:account:17785551209",
                        "tg:bal:customer:1", "tg:resv:customer:1"]
    # full = 0.10 + 120 minutes x 0.06 = 7.30; minimum = 0.10 + 0.06; ttl = cap + margin;
    # not an external call: no daily bound
    assert args == ["c1", 730000, 16000, (7200 + TTL_MARGIN_S) * 1000, "debit", 0, "skip", 0,
                    "skip", 0]
    assert (granted.code, granted.max_duration, granted.reserve) == (200, 300, D("0.45999"))


def test_credit_limits_go_as_micro_units():
    client = _FakeClient([1, None, b"", 22000])
    account = {**DEBIT_ACCOUNT, "billing_model": "credit", "credit_limit": "50"}
    Reservations(client).reserve("c1", D("0.22"), account, {"credit_limit": None}, ttl_s=1.5)
    (_, args), = client.calls
    assert args == ["c1", 22000, 22000, 1500, "credit", 5000000, "unlimited", 0, "skip", 0]


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
