"""A virtual PBX client's policies as pure decisions: the source filter, the outgoing DDI,
max calls."""
from __future__ import annotations

import pytest

from billing import policy

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


def test_notifications_of_refusals():
    assert policy.notification(policy.MAX_CALLS_OUT) == "max_calls_reached"
    assert policy.notification(policy.SOURCE_REFUSED) == "no_permission"
