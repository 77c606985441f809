"""The money rule in Python: bounds, available funds, holds, a paid call's authorization."""
from decimal import Decimal as D

import pytest

from billing import money
from billing.classify import Decision
from billing.money import (
    CREDIT,
    DEBIT,
    SKIP,
    UNLIMITED,
    Bound,
    Funds,
    Outcome,
    available,
    bounds,
    from_micro,
    hold,
    live_held,
    to_micro,
)
from billing.rating import MAX_CALL_SECONDS, Rate, charge
from tests.money_cases import ACCOUNT, CALL, CASES, Case

pytestmark = pytest.mark.unit

NOW = 1_800_000_000_000


def funds_of(case: Case) -> Funds:
    """The case as the Python rule reads it (the Lua reads the same from Redis)."""
    balances = tuple(None if b is None else D(b)
                     for b in (case.balance, case.customer_balance, case.spent))
    held = tuple(live_held(case.entries(scope, NOW), NOW, CALL) for scope in money.SCOPES)
    return Funds((*bounds(case.account(), case.customer()), money.daily(case.customer())),
                 balances, held)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_table_of_cases(case):
    assert hold(funds_of(case), D(case.amount), D(case.minimum)) == case.expect


# --- bounds and available funds ---------------------------------------------------------

def test_bounds_follow_the_billing_model():
    assert bounds({"billing_model": "debit"}, {"credit_limit": "1"}) == (Bound(DEBIT), Bound(SKIP))
    assert bounds({}, {}) == (Bound(DEBIT), Bound(SKIP))
    assert bounds({"billing_model": "credit", "credit_limit": "50"}, {"credit_limit": None}) == (
        Bound(CREDIT, D(50)), Bound(UNLIMITED))
    assert bounds({"billing_model": "credit", "credit_limit": ""}, {"credit_limit": "0.5"}) == (
        Bound(UNLIMITED), Bound(CREDIT, D("0.5")))


def test_unknown_billing_model_is_an_error():
    with pytest.raises(ValueError):
        bounds({"billing_model": "barter"}, {})


def credit(balance, limit, cbal="0", climit=None, held="0", cheld="0"):
    record = {"billing_model": "credit", "credit_limit": limit}
    return Funds(bounds(record, {"credit_limit": climit}), (D(balance), D(cbal)),
                 (D(held), D(cheld)))


def debit(balance, held="0"):
    return Funds(bounds({"billing_model": "debit"}, {}), (D(balance), None), (D(held), D(0)))


def test_available_is_the_smaller_bound():
    assert available(debit("5", held="1.5")) == D("3.5")
    assert available(credit("20", "50")) == D("30")
    assert available(credit("20", None)) is None
    assert available(credit("20", "50", cbal="93", climit="100")) == D("7")
    assert available(credit("20", None, cbal="93", climit="100", cheld="2")) == D("5")


def test_an_unreadable_bounding_balance_is_an_error():
    with pytest.raises(money.UnknownBalance) as err:
        available(Funds(bounds({"billing_model": "debit"}, {}), (None, None)))
    assert err.value.scope == ACCOUNT


def test_live_held_skips_expired_malformed_and_the_calls_own():
    entries = {b"a": b"50000:" + str(NOW + 1).encode(), b"b": b"70000:" + str(NOW).encode(),
               b"c": b"junk", b"mine": b"90000:" + str(NOW + 1).encode(), "d": f"-1:{NOW + 9}"}
    assert live_held(entries, NOW, "mine") == D("0.49999")
    assert live_held(entries, NOW) == D("1.39999")


@pytest.mark.parametrize("amount, micro", [("0", 0), ("1", 100000), ("0.00001", 1),
                                           ("-2.5", -250000), ("12345678.12345", 1234567812345)])
def test_micro_roundtrip_is_exact(amount, micro):
    assert to_micro(D(amount)) == micro
    assert from_micro(micro) == D(amount)


def test_more_than_five_decimals_is_refused():
    with pytest.raises(ValueError):
        to_micro(D("0.000001"))


# --- a paid call ------------------------------------------------------------------------

# 0.06/min per minute, 0.10 to connect: first charge 0.16
RATE = Rate("1", price_first=D("0.06"), price_next=D("0.06"), interval_first=60,
            interval_next=60, connect_fee=D("0.10"))
PAID = Decision(200, "Paid", "pstn", payer="17785551209", customer_id=1, rate=RATE, paid=True)


def authorize(decision, funds, cap=MAX_CALL_SECONDS):
    return money.authorize(decision, lambda amount, minimum: hold(funds, amount, minimum), cap)


def test_insufficient_when_the_first_interval_is_not_covered():
    assert authorize(PAID, debit("0.15999")).code == 402
    refused = authorize(PAID, debit("1", held="0.85"))
    assert (refused.reason, refused.payer, refused.customer_id) == ("Insufficient funds",
                                                                   PAID.payer, 1)


def test_max_duration_is_what_the_held_amount_affords():
    # 1.00: 0.10 fee + 15 minutes of 0.06 = 1.00 exactly -> 900 s
    granted = authorize(PAID, debit("1"))
    assert (granted.code, granted.max_duration, granted.reserve) == (200, 900, D("1.00000"))
    granted = authorize(PAID, debit("0.16"))
    assert (granted.max_duration, granted.reserve) == (60, D("0.16000"))
    # 0.45999 buys 5 minutes (0.40); all of it is held
    granted = authorize(PAID, debit("0.45999"), cap=7200)
    assert (granted.max_duration, granted.reserve) == (300, D("0.45999"))


def test_the_hold_stops_at_the_hard_cap():
    granted = authorize(PAID, debit("5.5"), cap=600)   # 0.10 + 10 x 0.06
    assert (granted.max_duration, granted.reserve) == (600, D("0.70000"))


def test_unlimited_credit_gets_the_cap():
    granted = authorize(PAID, credit("0", None), cap=3600)
    assert (granted.max_duration, granted.reserve) == (3600, charge(RATE, 3600))
    assert authorize(PAID, credit("0", None)).max_duration == MAX_CALL_SECONDS


def test_the_max_daily_usage_refuses_with_its_own_reason_and_caps_the_call():
    day = Funds((Bound(DEBIT), Bound(SKIP), money.daily({"max_daily_usage": "1"})),
                (D("50"), None, D("0.85")))
    refused = authorize(PAID, day)
    assert (refused.code, refused.reason, refused.customer_id) == (
        403, "Max daily usage reached", 1)
    day = Funds(day.bounds, (D("50"), None, D("0.5")))
    granted = authorize(PAID, day)   # 0.50 left today: 0.10 + 6 minutes of 0.06 = 0.46
    assert (granted.code, granted.max_duration, granted.reserve) == (200, 360, D("0.5"))


def test_no_daily_bound_without_a_limit_or_on_a_call_that_is_not_external():
    assert money.daily({"max_daily_usage": None}) == Bound(SKIP)
    assert money.daily({"max_daily_usage": "5"}, external=False) == Bound(SKIP)
    assert money.daily({"max_daily_usage": "5"}) == Bound(money.DAILY, D(5))


def test_an_unknown_balance_is_unavailable_never_free():
    funds = Funds(bounds({"billing_model": "debit"}, {}), (None, None))
    assert authorize(PAID, funds).code == 503


def test_free_and_refused_decisions_pass_unchanged():
    def untouched(amount, minimum):
        raise AssertionError("no funds needed")
    free = Decision(200, "Free", "pstn", payer="x")
    assert money.authorize(free, untouched) is free
    refused = Decision(403, "Forbidden destination")
    assert money.authorize(refused, untouched) is refused


def test_two_concurrent_calls_share_one_balance():
    # balance 1.00: the first call holds it all, the second finds nothing left
    first = authorize(PAID, debit("1"))
    second = authorize(PAID, debit("1", held=str(first.reserve)))
    assert first.ok and second.code == 402


def test_outcome_reports_what_was_held():
    assert hold(debit("1"), D("0.5"), D("0.16")) == Outcome(True, D(1), reserved=D("0.5"))


# --- a connected call rated anew (a call-back's leg A under CALLBACK_FAIL) ---------------

def test_a_rerated_call_may_last_what_the_new_hold_affords_cut_short_by_before():
    assert money.rerated_cap(250, 0, 10.0) == 250       # the funds cover the whole cap
    assert money.rerated_cap(25, 0, 10.0) == 25         # a dearer rate: a shorter cap
    assert money.rerated_cap(30, 5, 10.0) == 25         # "Disconnect call before"


def test_a_rate_the_funds_cannot_cover_for_the_time_talked_is_not_taken():
    assert money.rerated_cap(25, 0, 25.0) is None       # nothing left after what was said
    assert money.rerated_cap(25, 0, 31.5) is None       # would bill beyond the hold
    assert money.rerated_cap(30, 5, 26.0) is None
    assert money.rerated_cap(None, 0, 1.0) is None      # the hold was refused
