"""Rating: charges computed by hand, interval edges, free seconds, the inverse."""
from decimal import Decimal as D

import pytest

from billing.rating import (
    MAX_CALL_SECONDS,
    Rate,
    RateError,
    affordable_seconds,
    charge,
    charged_seconds,
    first_charge,
    is_paid,
)

pytestmark = pytest.mark.unit

# 0.06/min for the first 30 s, then 0.03/min per 6 s interval, 0.10 to connect, 5 s free
TOLL = Rate("1", price_first=D("0.06"), price_next=D("0.03"), interval_first=30,
            interval_next=6, connect_fee=D("0.10"), free_seconds=5)
PER_MINUTE = Rate("44", price_first=D("1"), price_next=D("1"), interval_first=60,
                  interval_next=60)
FREE = Rate("1800")


def test_unanswered_call_costs_nothing():
    assert charge(TOLL, 0) == D("0.00000")
    assert charge(TOLL, -3) == 0


def test_inside_free_seconds_only_the_connect_fee():
    assert charged_seconds(TOLL, 5) == 0
    assert charge(TOLL, 1) == D("0.10000")
    assert charge(TOLL, 5) == D("0.10000")


def test_first_interval_rounds_up():
    # 6 s: 1 billable second -> the whole 30 s first interval: 0.10 + 0.06 * 30 / 60
    assert charged_seconds(TOLL, 6) == 30
    assert charge(TOLL, 6) == D("0.13000")
    assert charge(TOLL, 35) == D("0.13000")


def test_next_intervals_round_up():
    # 36 s: 31 billable -> 30 + 6; 0.10 + 0.03 + 0.03 * 6 / 60 = 0.133
    assert charged_seconds(TOLL, 36) == 36
    assert charge(TOLL, 36) == D("0.13300")
    assert charge(TOLL, 41) == D("0.13300")
    # 42 s: 37 billable -> 30 + 12: 0.10 + 0.03 + 0.006
    assert charge(TOLL, 42) == D("0.13600")


def test_per_minute_edges():
    assert charge(PER_MINUTE, 60) == D("1.00000")
    assert charge(PER_MINUTE, 61) == D("2.00000")
    assert charge(PER_MINUTE, 120) == D("2.00000")


def test_rounding_to_five_decimals_half_up():
    # 0.00001/min for 30 s = 0.000005 exactly -> rounds half up to 0.00001
    rate = Rate("9", price_first=D("0.00001"), price_next=D("0.00001"), interval_first=30,
                interval_next=30)
    assert charge(rate, 1) == D("0.00001")
    # 1/min for 1 s = 0.0166666... -> 0.01667
    one = Rate("9", price_first=D("1"), price_next=D("1"))
    assert charge(one, 1) == D("0.01667")
    assert charge(one, 2) == D("0.03333")


def test_rounding_happens_once_on_the_total():
    # 1/min per second: 3 s is exactly 0.05, not 3 x 0.01667
    one = Rate("9", price_first=D("1"), price_next=D("1"))
    assert charge(one, 3) == D("0.05000")


def test_free_rate_is_not_paid():
    assert not is_paid(FREE)
    assert charge(FREE, 3600) == 0
    assert is_paid(TOLL)
    assert is_paid(Rate("7", connect_fee=D("0.01")))


def test_first_charge_is_fee_plus_first_interval():
    assert first_charge(TOLL) == D("0.13000")


@pytest.mark.parametrize("bad", [
    {"price_first": 0.5},                       # float money
    {"price_first": "-1"},
    {"interval_first": 0},
    {"interval_next": "6"},
    {"free_seconds": -1},
    {"connect_fee": "abc"},
    {"price_next": "NaN"},
])
def test_rate_rejects_bad_values(bad):
    record = {"prefix": "1", "price_first": "0.1", "price_next": "0.1", **bad}
    with pytest.raises(RateError):
        Rate.from_map(record)


def test_rate_map_roundtrip():
    assert Rate.from_map(TOLL.to_map()) == TOLL


def test_affordable_on_interval_boundaries():
    # 0.13 pays up to 35 s (5 free + 30 first), 0.133 up to 41 s
    assert affordable_seconds(TOLL, D("0.13")) == 35
    assert affordable_seconds(TOLL, D("0.13299")) == 35
    assert affordable_seconds(TOLL, D("0.133")) == 41
    assert affordable_seconds(PER_MINUTE, D("2.5")) == 120


def test_affordable_below_first_interval():
    # the connect fee alone buys the free seconds, nothing below it buys anything
    assert affordable_seconds(TOLL, D("0.12")) == 5
    assert affordable_seconds(TOLL, D("0.09999")) == 0
    assert affordable_seconds(TOLL, D("-1")) == 0
    assert affordable_seconds(PER_MINUTE, D("0.99999")) == 0


def test_affordable_unlimited_and_capped():
    assert affordable_seconds(TOLL, None) == MAX_CALL_SECONDS
    assert affordable_seconds(TOLL, D("1000000"), cap=600) == 600
    assert affordable_seconds(FREE, D("0")) == MAX_CALL_SECONDS
    flat = Rate("5", price_first=D("1"), interval_first=60)  # nothing after the first minute
    assert affordable_seconds(flat, D("1")) == MAX_CALL_SECONDS


@pytest.mark.parametrize("rate", [TOLL, PER_MINUTE, Rate(
    "3", price_first=D("0.07"), price_next=D("0.011"), interval_first=1, interval_next=1,
    connect_fee=D("0.00003")), Rate("8", price_first=D("0.33333"), price_next=D("0.77777"),
                                   interval_first=7, interval_next=13, free_seconds=2)])
def test_affordable_is_the_exact_inverse_of_charge(rate):
    for cents in range(0, 400, 3):
        available = D(cents) / 100 + D("0.00007")
        seconds = affordable_seconds(rate, available)
        assert charge(rate, seconds) <= available
        assert charge(rate, seconds + 1) > available


def test_affordable_handles_huge_balances_quickly():
    assert affordable_seconds(TOLL, D("1e12")) == MAX_CALL_SECONDS
