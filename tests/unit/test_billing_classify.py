"""Classification of INVITEs from plain records (seed: Smart Calls, Ltd.)."""
from datetime import datetime, timezone
from decimal import Decimal as D

import pytest

from billing.classify import (
    IVR,
    ONNET,
    PSTN,
    Decision,
    classify,
    find_rate,
    longest_prefix,
    table_lookup,
)
from billing.rating import Rate

pytestmark = pytest.mark.unit

TARIFFS = {
    7: {"1": {"prefix": "1", "price_first": "0.06", "price_next": "0.06",
              "interval_first": 60, "interval_next": 60},
        "1800": {"prefix": "1800", "price_first": "0", "price_next": "0"},
        "1900": {"prefix": "1900", "price_first": "2", "price_next": "2", "forbidden": True},
        "44": {"prefix": "44", "price_first": "0.1", "price_next": "0.1"}},
    8: {"": {"prefix": "", "price_first": "0.5", "price_next": "0.5"}},
    9: {"1": {"prefix": "1", "price_first": "oops"}},
}
LOOKUP = table_lookup(TARIFFS.get)
PRODUCT = {"id": 3, "rating": [{"access_code": "", "tariff_id": 7},
                               {"access_code": "IN", "tariff_id": 8}]}
CUSTOMER = {"id": 1, "name": "Smart Calls, Ltd.", "blocked": False}
ROAMING_PIN = {"id": 5, "type": "pass_through", "settings": {"authorize_paid_calls": True}}
MARK = {"id": "17785551210", "customer_id": 1, "product_id": 3, "ivr_app_id": 5,
        "blocked": False, "expires": None}
RACHEL = {"id": "17785551209", "customer_id": 1, "product_id": 3, "ivr_app_id": None}
JAKE = {"id": "17785551211", "customer_id": 1}
STRANGER = {"id": "16045550000", "customer_id": 2}


def run(dialed, caller=MARK, **kw):
    kw.setdefault("app", ROAMING_PIN if caller.get("ivr_app_id") else None)
    return classify(caller, kw.pop("customer", CUSTOMER), kw.pop("product", PRODUCT), dialed,
                    LOOKUP, **kw)


def test_toll_call_from_marks_phone_goes_to_the_ivr():
    decision = run("12125551234")
    assert (decision.code, decision.route, decision.payer) == (200, IVR, "17785551210")
    assert not decision.paid


def test_toll_leg_from_the_ivr_is_paid_by_the_auth_id_owner():
    decision = run("12125551234", caller=RACHEL, from_ivr=True)
    assert (decision.route, decision.payer, decision.paid) == (PSTN, "17785551209", True)
    assert decision.rate.prefix == "1"


def test_call_to_a_colleague_is_onnet_without_a_code():
    decision = run("17785551211", callee=JAKE)
    assert (decision.code, decision.route, decision.paid) == (200, ONNET, False)


def test_call_to_another_customers_account_is_rated():
    decision = run("16045550000", caller=RACHEL, callee=STRANGER)
    assert (decision.route, decision.paid) == (ONNET, True)


def test_toll_free_goes_straight_through():
    decision = run("18005551234")
    assert (decision.code, decision.route, decision.paid) == (200, PSTN, False)


def test_paid_call_without_ivr_is_paid_direct():
    decision = run("+4420712345", caller=RACHEL)
    assert (decision.route, decision.paid, decision.rate.prefix) == (PSTN, True, "44")


def test_ivr_app_without_authorize_paid_calls_is_direct():
    app = {"id": 5, "type": "pass_through", "settings": {"authorize_paid_calls": False}}
    assert run("12125551234", app=app).route == PSTN
    assert run("12125551234", app={"type": "prepaid", "settings": {}}).route == PSTN


@pytest.mark.parametrize("dialed, code, reason", [
    ("19005551234", 403, "Forbidden destination"),
    ("3312345678", 403, "No rating for destination"),
    ("jake", 404, "Unknown number"),
    ("", 404, "Unknown number"),
    ("1' OR 1=1", 404, "Unknown number"),
])
def test_refusals(dialed, code, reason):
    assert run(dialed) == Decision(code, reason)


def test_blocked_or_expired_callers_are_refused_first():
    assert run("18005551234", caller={**MARK, "blocked": True}).reason == "Account blocked"
    assert run("18005551234", customer={**CUSTOMER, "blocked": True}).reason == "Customer blocked"
    past = {**MARK, "expires": "2020-01-01T00:00:00+00:00"}
    assert run("18005551234", caller=past).reason == "Account expired"
    future = {**MARK, "expires": "2020-01-01T00:00:00"}
    now = datetime(2019, 1, 1, tzinfo=timezone.utc)
    assert run("18005551234", caller=future, now=now).ok
    assert run("18005551234", caller={**MARK, "expires": "junk"}).code == 403


def test_broken_rating_data_fails_closed():
    product = {"rating": [{"access_code": "", "tariff_id": 9}]}
    assert run("12125551234", caller=RACHEL, product=product).code == 503


def test_access_codes_pick_their_own_tariff():
    assert find_rate(PRODUCT, "12125551234", LOOKUP, "IN").price_first == D("0.5")
    assert find_rate(PRODUCT, "12125551234", LOOKUP, "FIRSTCALL") is None
    assert find_rate({}, "1", LOOKUP) is None


def test_longest_prefix_wins():
    table = {"1": "a", "1212": "b", "12125": "c"}
    assert longest_prefix(table, "12125551234") == "c"
    assert longest_prefix(table, "12135551234") == "a"
    assert longest_prefix(table, "2") is None
    assert longest_prefix({"": "all"}, "2") == "all"


def test_lookup_may_return_rate_objects():
    def lookup(tariff, number):
        return Rate("1", price_first=D("1"))
    decision = classify(RACHEL, CUSTOMER, PRODUCT, "12125551234", lookup)
    assert decision.paid and decision.rate.price_first == 1


def test_a_client_whose_calls_are_not_priced_still_needs_an_allowed_destination():
    """Billing method none: no code asked, nothing held, but rating still decides."""
    decision = run("12125551234", priced=False)
    assert (decision.code, decision.reason, decision.route, decision.paid) == (
        200, "Not priced", PSTN, False)
    assert run("19005551234", priced=False).reason == "Forbidden destination"
    assert run("3312345", priced=False, caller=RACHEL).reason == "No rating for destination"


def test_the_refusal_when_no_rate_is_the_callers_to_choose():
    cannot = Decision(403, "Call cannot be billed")
    assert run("3312345", caller=RACHEL, no_rate=cannot) is cannot
    assert run("3312345", caller=RACHEL).reason == "No rating for destination"
