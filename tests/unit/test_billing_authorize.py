"""Authorization: the money model, reservations of concurrent calls, the hard cap."""
from decimal import Decimal as D

import pytest

from billing.authorize import Funds, account_available, authorize, available, fits
from billing.classify import Decision
from billing.rating import MAX_CALL_SECONDS, Rate, charge

pytestmark = pytest.mark.unit

# 0.06/min per minute, 0.10 to connect: first charge 0.16
RATE = Rate("1", price_first=D("0.06"), price_next=D("0.06"), interval_first=60,
            interval_next=60, connect_fee=D("0.10"))
PAID = Decision(200, "Paid", "pstn", payer="17785551209", customer_id=1, rate=RATE, paid=True)


def debit(balance, reserved="0"):
    return Funds("debit", D(balance), reserved_account=D(reserved))


def credit(balance, limit, cbal="0", climit=None, reserved="0", creserved="0"):
    return Funds("credit", D(balance), None if limit is None else D(limit), D(cbal),
                 None if climit is None else D(climit), D(reserved), D(creserved))


def test_debit_available_is_balance_minus_reservations():
    assert available(debit("5", "1.5")) == D("3.5")


def test_credit_available_is_limit_minus_owed():
    assert available(credit("20", "50")) == D("30")
    assert available(credit("20", None)) is None


def test_customer_credit_limit_caps_credit_accounts():
    # account could owe 30 more; the customer only 7 more (93 owed of 100, 0 reserved)
    assert available(credit("20", "50", cbal="93", climit="100")) == D("7")
    assert available(credit("20", None, cbal="93", climit="100", creserved="2")) == D("5")


def test_customer_cap_does_not_touch_debit_accounts():
    funds = Funds("debit", D("5"), customer_balance=D("999"), customer_credit_limit=D("1"))
    assert available(funds) == D("5")


def test_unknown_billing_model_is_an_error():
    with pytest.raises(ValueError):
        account_available(Funds("barter", D(0)))


def test_insufficient_when_first_interval_not_covered():
    assert authorize(PAID, debit("0.15999")).code == 402
    assert authorize(PAID, debit("1", reserved="0.85")).reason == "Insufficient funds"


def test_max_duration_is_what_the_payer_can_afford():
    # 1.00: 0.10 fee + 15 minutes of 0.06 = 1.00 exactly -> 900 s
    granted = authorize(PAID, debit("1"))
    assert (granted.code, granted.max_duration, granted.reserve) == (200, 900, D("1.00000"))
    granted = authorize(PAID, debit("0.16"))
    assert (granted.max_duration, granted.reserve) == (60, D("0.16000"))


def test_unlimited_credit_gets_the_cap():
    granted = authorize(PAID, credit("0", None), cap=3600)
    assert (granted.max_duration, granted.reserve) == (3600, charge(RATE, 3600))
    assert authorize(PAID, credit("0", None)).max_duration == MAX_CALL_SECONDS


def test_free_and_refused_decisions_pass_unchanged():
    free = Decision(200, "Free", "pstn", payer="x")
    assert authorize(free, debit("0")) is free
    refused = Decision(403, "Forbidden destination")
    assert authorize(refused, debit("0")) is refused


def test_two_concurrent_calls_share_one_balance():
    # balance 1.00: the first call reserves it all, the second finds nothing left
    first = authorize(PAID, debit("1"))
    second = authorize(PAID, debit("1", reserved=first.reserve))
    assert first.ok and second.code == 402


def test_fits():
    assert fits(None, D("1e9"))
    assert fits(D("1"), D("1"))
    assert not fits(D("0.99999"), D("1"))


def test_funds_from_records():
    account = {"billing_model": "credit", "credit_limit": "50"}
    funds = Funds.from_records(account, {"credit_limit": None}, "20.5", "3", "1")
    assert available(funds) == D("28.5")
    debit_funds = Funds.from_records({"billing_model": "debit"}, {}, "2")
    assert available(debit_funds) == D("2")
