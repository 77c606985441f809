"""Virtual PBX client policies (virtual-pbx-client.txt) through the real stack: max calls
out and in, the source filter, the outgoing DDI. Each scenario makes its own client."""
from __future__ import annotations

import pytest

from tests import tenants
from tests.calls import TOLL, dial, phone, talking
from tests.integration.test_geoip import write_db

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def geoip_database(tg):
    """The stack's GeoIP database, written before any call: loopback is in Spain."""
    path = tg.settings.geoip_path
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_db(path, {"127.0.0.0/8": "ES"})


def test_max_calls_refuses_the_n_plus_first_external_call_and_keeps_the_first(
        tg, sip, gateway, records, calls_end):
    client = tenants.straight_out(tg, client={"max_calls": 1})
    ph = phone(tg, sip, "client", (client.account, client.password))
    first = dial(tg, ph, TOLL)
    out = gateway.wait_incoming(15)
    sip.wait_for(lambda: first.confirmed, 10, "the first call answered")
    second = dial(tg, ph, TOLL)
    sip.wait_for(lambda: second.disconnected, 10, "the second call refused")
    assert (second.last_code, second.last_reason) == (403, "Max calls reached")
    talking(sip, first, out)  # the first call is intact
    assert not first.disconnected
    first.hangup_with()
    sip.wait_for(lambda: out.disconnected, 10, "BYE reaching the gateway")
    records.settled_xdrs(first.call_id, 1)
    third = dial(tg, ph, TOLL)  # the slot is free again
    sip.wait_for(lambda: third.confirmed, 15, "a call after the first ended")
    assert len(gateway.incoming) == 2


def test_max_calls_counts_calls_in_from_the_gateway_too(tg, sip, gateway, calls_end):
    client = tenants.straight_out(tg, client={"max_calls": 1})
    ph = phone(tg, sip, "client", (client.account, client.password))
    first = gateway.call(f"sip:{client.account}@{tg.sip_target}")
    sip.wait_for(lambda: first.confirmed, 15, "the first call in answered")
    second = gateway.call(f"sip:{client.account}@{tg.sip_target}")
    sip.wait_for(lambda: second.disconnected, 10, "the second call in refused")
    assert (second.last_code, second.last_reason) == (486, "Max calls reached")
    out = dial(tg, ph, TOLL)  # and an outgoing one while the incoming call lasts
    sip.wait_for(lambda: out.disconnected, 10, "the outgoing call refused")
    assert out.last_code == 403
    assert not first.disconnected


@pytest.mark.parametrize("sources, countries, allowed", [
    (["127.0.0.2/32"], [], False), (["127.0.0.0/8"], [], True), ([], [], False),
    ([], ["ES"], True), ([], ["FR", "PT"], False), (["127.0.0.2/32"], ["FR", "ES"], True)])
def test_filter_by_ip_address(tg, sip, gateway, calls_end, sources, countries, allowed):
    client = tenants.straight_out(tg, client={"ip_filter": True, "authorized_sources": sources,
                                              "allowed_countries": countries})
    ph = phone(tg, sip, "client", (client.account, client.password))  # from 127.0.0.1
    call = dial(tg, ph, TOLL)
    sip.wait_for(lambda: call.confirmed or call.disconnected, 15, "the answer")
    if allowed:
        assert call.confirmed
    else:
        assert (call.last_code, call.last_reason) == (403, "No permission to place this call")
        assert gateway.incoming == []


def test_the_gateway_sees_the_clients_outgoing_ddi(tg, sip, gateway, calls_end):
    ddi = tenants.next_associated_number() + "999"  # the client's own number (an alias)
    client = tenants.straight_out(tg, client={"outgoing_ddi": ddi}, aliases=(ddi,))
    ph = phone(tg, sip, "client", (client.account, client.password))
    call = dial(tg, ph, TOLL, headers={"P-Asserted-Identity": "<sip:911@evil.example>"})
    out = gateway.wait_incoming(15)
    sip.wait_for(lambda: call.confirmed, 10, "the call answered")
    assert out.header("P-Asserted-Identity") == f"<sip:{ddi}@{tg.settings.sip_domain}>"
    assert "911" not in out.request


def test_an_accounts_own_outgoing_ddi_wins_over_the_clients(tg, sip, gateway, calls_end):
    block = tenants.next_associated_number()
    client_ddi, own_ddi = block + "998", block + "999"
    client = tenants.straight_out(tg, client={"outgoing_ddi": client_ddi},
                                  aliases=(client_ddi, own_ddi),
                                  account_fields={"outgoing_ddi": own_ddi})
    ph = phone(tg, sip, "client", (client.account, client.password))
    call = dial(tg, ph, TOLL)
    out = gateway.wait_incoming(15)
    sip.wait_for(lambda: call.confirmed, 10, "the call answered")
    assert out.header("P-Asserted-Identity") == f"<sip:{own_ddi}@{tg.settings.sip_domain}>"
