"""A virtual PBX client's policies as pure decisions: the source filter, the outgoing DDI,
max calls."""
from __future__ import annotations

import pytest

from billing import policy
from billing.classify import Decision

pytestmark = pytest.mark.unit

CLIENT = {"id": 7, "ip_filter": True, "authorized_sources": ["192.0.2.0/24", "2001:db8::/32"],
          "allowed_countries": []}


@pytest.mark.parametrize("address, allowed", [
    ("192.0.2.10", True), ("192.0.3.10", False), ("2001:db8::5", True), ("2001:db9::5", False),
    ("not-an-ip", False), ("", False),
])
def test_authorized_sources(address, allowed):
    assert policy.source_allowed(CLIENT, address) is allowed


def test_filter_off_allows_all_and_on_with_empty_lists_allows_nothing():
    assert policy.source_allowed({**CLIENT, "ip_filter": False}, "203.0.113.1")
    empty = {**CLIENT, "authorized_sources": [], "allowed_countries": []}
    assert not policy.source_allowed(empty, "192.0.2.10")
    assert not policy.source_allowed(empty, "192.0.2.10", lambda ip: "ES")


def test_allowed_countries_by_geoip():
    by_country = {**CLIENT, "authorized_sources": [], "allowed_countries": ["ES", "FR"]}
    country = {"198.51.100.1": "ES", "198.51.100.2": "US"}.get
    assert policy.source_allowed(by_country, "198.51.100.1", lambda ip: country(ip, ""))
    assert not policy.source_allowed(by_country, "198.51.100.2", lambda ip: country(ip, ""))
    assert not policy.source_allowed(by_country, "198.51.100.1")  # no database: nothing


def test_a_bad_cidr_authorizes_nobody():
    assert not policy.source_allowed({**CLIENT, "authorized_sources": ["300.1.1.0/24"]},
                                     "300.1.1.1")


def test_outgoing_ddi_account_first_then_client():
    assert policy.outgoing_ddi({"outgoing_ddi": "34911"}, {"outgoing_ddi": "34922"}) == "34911"
    assert policy.outgoing_ddi({}, {"outgoing_ddi": "34922"}) == "34922"
    assert policy.outgoing_ddi({}, {}) == ""


@pytest.mark.parametrize("value, most", [(0, 0), (None, 0), (3, 3), (-1, 0), ("5", 0)])
def test_max_calls(value, most):
    assert policy.max_calls({"max_calls": value}) == most


ON = {"voice_notifications": True}


@pytest.mark.parametrize("decision, locution", [
    (policy.MAX_CALLS_OUT, "max_calls_reached"), (policy.SOURCE_REFUSED, "no_permission"),
    (policy.DAILY_REACHED, "max_daily_usage_reached"),
    (Decision(403, "Call cannot be billed"), "cannot_bill"),
    (Decision(402, "Insufficient funds"), "insufficient_funds"),
    (Decision(404, "Unknown number"), "not_found"),
    (Decision(403, "Forbidden destination"), "no_permission"),
    (Decision(503, "Backend unavailable"), ""), (Decision(200, "Paid"), "")])
def test_the_locution_of_each_refusal(decision, locution):
    assert policy.notification(decision, ON) == locution


def test_no_locution_when_the_client_has_notifications_off():
    assert policy.notification(policy.MAX_CALLS_OUT, {"voice_notifications": False}) == ""
    assert policy.notification(policy.MAX_CALLS_OUT, None) == ""


def test_every_locution_is_a_prompt_in_every_language():
    from ivr.prompts import TEXTS
    for language, texts in TEXTS.items():
        assert set(policy.NOTIFICATIONS.values()) <= set(texts), language


def test_calls_are_priced_unless_billing_is_off_or_its_method_is_none():
    assert policy.priced({}) and policy.priced(None)
    assert policy.priced({"features": ["billing"], "billing_method": "postpaid"})
    assert not policy.priced({"features": ["billing"], "billing_method": "none"})
    assert not policy.priced({"features": ["recording"], "billing_method": "postpaid"})


def test_notifications_need_the_feature_too():
    on = {"voice_notifications": True, "features": ["billing"]}
    assert policy.notification(policy.MAX_CALLS_OUT, on) == ""
    assert policy.notification(policy.MAX_CALLS_OUT,
                               {**on, "features": ["voice_notifications"]}) == "max_calls_reached"


def test_the_first_application_server_by_distribute_method():
    client = {"id": 7, "distribute_method": "hash"}
    assert len({policy.first_server(client, f"call-{n}", 4, n) for n in range(20)}) == 1
    robin = {**client, "distribute_method": "round_robin"}
    assert [policy.first_server(robin, "same", 3, n) for n in range(6)] == [0, 1, 2, 0, 1, 2]
    static = {**client, "distribute_method": "static", "application_server": 5}
    assert policy.first_server(static, "any", 4, 0) == 1   # 5 of 4 servers wraps
    # no client (an access number called from the PSTN): spread by the call
    assert len({policy.first_server(None, f"call-{n}", 4, 0) for n in range(40)}) == 4
