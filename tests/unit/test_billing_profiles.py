"""Rating profiles: which product bills a virtual PBX client's call (billing/profiles.py)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from billing.profiles import active, product_for

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def profile(product: int, activation: str, expiry: str | None = None) -> dict:
    return {"product_id": product, "activation": activation, "expiry": expiry}


def test_a_client_without_profiles_is_billed_by_the_accounts_product():
    assert product_for({"rating_profiles": []}, 7, NOW, lambda p: False) == 7
    assert product_for({}, 7, NOW, lambda p: False) == 7


def test_the_newest_active_profile_that_rates_the_call_bills_it():
    client = {"rating_profiles": [profile(1, "2026-01-01T00:00:00+00:00"),
                                  profile(2, "2026-06-01T00:00:00+00:00"),
                                  profile(3, "2026-11-30T00:00:00+00:00")]}
    assert product_for(client, 9, NOW, lambda p: True) == 3
    assert product_for(client, 9, NOW, lambda p: p in (1, 2)) == 2
    assert product_for(client, 9, NOW, lambda p: p == 1) == 1


def test_no_active_profile_that_rates_the_call_means_it_cannot_be_billed():
    client = {"rating_profiles": [profile(1, "2026-01-01T00:00:00+00:00")]}
    # never the account's product once the client has profiles
    assert product_for(client, 9, NOW, lambda p: p == 9) is None


def test_profiles_not_yet_active_or_expired_do_not_bill():
    client = {"rating_profiles": [
        profile(1, "2026-12-02T00:00:00+00:00"),                                # tomorrow
        profile(2, "2026-01-01T00:00:00+00:00", "2026-12-01T12:00:00+00:00"),    # just ended
        profile(3, "2026-01-01T00:00:00+00:00", "2026-12-01T12:00:01+00:00")]}   # ends soon
    assert active(client["rating_profiles"], NOW) == [3]


def test_unreadable_times_never_bill():
    client = [profile(1, "not a time"), profile(2, "2026-01-01T00:00:00+00:00", "garbage"),
              profile(3, "")]
    assert active(client, NOW) == []


def test_times_without_an_offset_are_utc_and_datetimes_are_taken_as_they_are():
    client = [profile(1, "2026-12-01T12:00:00"),
              {"product_id": 2, "activation": datetime(2026, 12, 1, 13, tzinfo=timezone.utc),
               "expiry": None}]
    assert active(client, NOW) == [1]
