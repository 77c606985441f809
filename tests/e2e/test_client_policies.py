"""Virtual PBX client policies (virtual-pbx-client.txt) through the real stack: max calls
out and in, the source filter, the outgoing DDI, rating profiles, voice notifications.
Each scenario makes its own client."""
from __future__ import annotations

import time
import wave
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from tests import tenants
from tests.calls import TOLL, dial, logged, phone, talking
from tests.integration.test_geoip import write_db
from tests.phones import INFO, RFC4733
from tests.records import wait_until

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
    assert "sip:911@" not in out.request and "evil.example" not in out.request


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


def test_rating_profiles_bill_the_client_and_refuse_what_none_can_bill(
        tg, sip, gateway, records, calls_end):
    """Once a client has rating profiles, only an active one that rates the call bills it
    (never the account's own product); the notification reason is 'Call cannot be
    billed'."""
    client = tenants.straight_out(tg)            # the account's product: 0.60/min, 1/1
    cheap = f"Cheap {client.customer}"
    tg.cli("tariff", "create", cheap, "--currency", "USD")
    tg.cli("rate", "create", cheap, "1", "--price", "0.06", "--interval", "1/1")
    tg.cli("product", "create", cheap, "--currency", "USD", "--rating", cheap)
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    tg.cli("rating-profile", "add", client.customer, cheap, "--activation", tomorrow)
    ph = phone(tg, sip, "profiles", (client.account, client.password))
    refused = dial(tg, ph, TOLL)
    sip.wait_for(lambda: refused.disconnected, 10, "the call with no active profile")
    assert (refused.last_code, refused.last_reason) == (403, "Call cannot be billed")
    assert gateway.incoming == []
    tg.cli("rating-profile", "add", client.customer, cheap, "--activation", "2026-01-01")
    call = dial(tg, ph, TOLL)
    out = gateway.wait_incoming(15)
    sip.wait_for(lambda: call.confirmed, 10, "the call billed by the active profile")
    talking(sip, call, out)
    call.hangup_with()
    records.settled_xdrs(call.call_id, 1)
    [(seconds, amount)] = records.query(
        "SELECT charged_seconds, amount FROM xdrs WHERE session_id = %s", call.call_id)
    assert seconds > 0 and amount == Decimal("0.001") * seconds   # 0.06/min, not 0.60
    # the active profile's product has no rate for 44: nothing can bill it
    abroad = dial(tg, ph, "442079460000")
    sip.wait_for(lambda: abroad.disconnected, 10, "a call no profile rates")
    assert (abroad.last_code, abroad.last_reason) == (403, "Call cannot be billed")


def test_voice_notifications_explain_a_refusal_as_early_media_then_refuse(
        tg, sip, gateway, records, calls_end):
    """With voice notifications on, the refused caller hears why (183 and audio from the
    IVR), then gets the refusal's own code and reason; nothing is billed."""
    client = tenants.straight_out(tg, client={"ip_filter": True,
                                              "voice_notifications": True})
    ph = phone(tg, sip, "notified", (client.account, client.password))
    call = dial(tg, ph, TOLL)
    sip.wait_for(lambda: call.disconnected, 30, "the explained refusal")
    assert (call.last_code, call.last_reason) == (403, "No permission to place this call")
    assert 183 in call.codes and call.rx_packets() > 25   # half a second of the locution
    assert logged(tg, call, "PROMPT: playing no_permission")
    assert gateway.incoming == []
    assert not call.confirmed
    wait_until(records.written_out, 20, "the xDR writer idle")
    assert records.xdrs(call.call_id) == []
    # the caller's ACK of the 403 belongs to Kamailio's transaction: absorbed, not refused
    assert f"[{call.call_id}] DIALOG: refused" not in tg.log("kamailio")


def test_without_voice_notifications_the_refusal_comes_at_once(tg, sip, gateway, calls_end):
    client = tenants.straight_out(tg, client={"ip_filter": True})
    ph = phone(tg, sip, "not-notified", (client.account, client.password))
    call = dial(tg, ph, TOLL)
    sip.wait_for(lambda: call.disconnected, 10, "the refusal")
    assert (call.last_code, call.codes) == (403, [403])
    assert not logged(tg, call, "NOTIFY")


def test_a_caller_may_hang_up_during_the_notification(tg, sip, gateway, calls_end):
    client = tenants.straight_out(tg, client={"max_daily_usage": "0",
                                              "voice_notifications": True})
    ph = phone(tg, sip, "impatient", (client.account, client.password))
    call = dial(tg, ph, TOLL)
    sip.wait_for(lambda: call.rx_packets() > 0, 20, "the locution playing")
    assert logged(tg, call, "PROMPT: playing max_daily_usage_reached")
    call.hangup_with()   # CANCEL
    sip.wait_for(lambda: call.disconnected, 10, "the call cancelled")
    assert call.last_code == 487


def test_billing_method_none_rates_the_call_but_charges_nothing(
        tg, sip, gateway, records, calls_end):
    client = tenants.straight_out(tg, balance="0.00", client={"billing_method": "none"})
    ph = phone(tg, sip, "unpriced", (client.account, client.password))
    call = dial(tg, ph, TOLL)               # a paid number, and no funds at all
    out = gateway.wait_incoming(15)
    sip.wait_for(lambda: call.confirmed, 10, "the call connected")
    talking(sip, call, out)
    call.hangup_with()
    [row] = records.settled_xdrs(call.call_id, 1)
    assert row[3] > 0 and row[4] == 0
    assert records.balance(client.account) == Decimal("0.00")
    abroad = dial(tg, ph, "442079460000")    # still refused where nothing rates it
    sip.wait_for(lambda: abroad.disconnected, 10, "the unrated call")
    assert (abroad.last_code, abroad.last_reason) == (403, "No rating for destination")


def extension_phone(tg, sip, client, ext: str):
    """A phone of `client` logged in to its SIP domain as extension `ext`."""
    _, password = client.extensions[ext]
    ph = sip.phone(f"{client.domain}-{ext}")
    assert ph.register(f"sip:{tg.sip_target}", ext, password, client.domain) == 200
    return ph


def test_two_clients_with_the_same_extensions_each_in_its_own_domain(
        tg, sip, gateway, records, calls_end):
    a, b = tenants.pbx_client(tg), tenants.pbx_client(tg)
    a101, a102 = extension_phone(tg, sip, a, "101"), extension_phone(tg, sip, a, "102")
    b101, b102 = extension_phone(tg, sip, b, "101"), extension_phone(tg, sip, b, "102")
    for caller, callee, client in ((a101, a102, a), (b101, b102, b)):
        call = caller.call(f"sip:102@{client.domain}")
        incoming = callee.wait_incoming(15)           # its own client's 102, not the other's
        sip.wait_for(lambda: call.confirmed, 10, "the extension answering")
        call.hangup_with()
        sip.wait_for(lambda: incoming.disconnected, 10, "the hangup")
        [row] = records.settled_xdrs(call.call_id, 1)
        assert (row[0], row[1], row[4]) == ("onnet", client.extensions["101"][0], 0)
    assert a102.incoming and b102.incoming and len(a102.incoming) == len(b102.incoming) == 1
    # dialed at the proxy's address, an extension is still the caller's own client's
    call = b101.call(f"sip:102@{tg.sip_target}")
    b102.wait_incoming(15)
    sip.wait_for(lambda: call.confirmed, 10, "the extension by the proxy's address")


def test_an_extension_logs_in_only_in_its_own_domain(tg, sip, calls_end):
    a, b = tenants.pbx_client(tg), tenants.pbx_client(tg)
    ph = sip.phone("wrong-domain")
    _, password = a.extensions["101"]
    assert ph.register(f"sip:{tg.sip_target}", "101", password, b.domain) == 403
    # nor as its account ID in the platform's domain
    account, _ = a.extensions["101"]
    assert ph.register(f"sip:{tg.sip_target}", account, password, tg.settings.sip_domain) == 403


def test_another_clients_extensions_only_within_one_corporation(tg, sip, calls_end):
    a, stranger = tenants.pbx_client(tg, corporation="Holding"), tenants.pbx_client(tg)
    friend = tenants.pbx_client(tg, corporation="Holding")
    a101 = extension_phone(tg, sip, a, "101")
    refused = a101.call(f"sip:102@{stranger.domain}")
    sip.wait_for(lambda: refused.disconnected, 10, "the other client's extension refused")
    assert (refused.last_code, refused.last_reason) == (403, "No permission to place this call")
    friend102 = extension_phone(tg, sip, friend, "102")
    call = a101.call(f"sip:102@{friend.domain}")
    friend102.wait_incoming(15)
    sip.wait_for(lambda: call.confirmed, 10, "an inter-VPBX friend's extension answering")


@pytest.mark.parametrize("server", [0, 1])
def test_the_static_distribute_method_sends_every_call_to_its_application_server(
        tg, sip, calls_end, server):
    client = tenants.via_ivr(tg, client={"distribute_method": "static",
                                         "application_server": server})
    ph = phone(tg, sip, "static", (client.caller, client.password))
    calls = [dial(tg, ph, TOLL) for _ in range(3)]
    for call in calls:
        sip.wait_for(lambda: logged(tg, call, "PROMPT: playing enter_code"), 15, "the IVR")
    mine = tg.log(f"ivr-{server}")
    assert all(f"[{call.call_id}] ANSWER" in mine for call in calls)


def test_the_hash_distribute_method_keeps_a_client_on_one_server(tg, sip, calls_end):
    client = tenants.via_ivr(tg)   # hash is the default
    ph = phone(tg, sip, "hashed", (client.caller, client.password))
    calls = [dial(tg, ph, TOLL) for _ in range(4)]
    for call in calls:
        sip.wait_for(lambda: logged(tg, call, "PROMPT: playing enter_code"), 15, "the IVR")
    servers = {name for name in ("ivr-0", "ivr-1")
               for call in calls if f"[{call.call_id}] ANSWER" in tg.log(name)}
    assert len(servers) == 1


def test_a_call_dialed_with_the_recording_code_is_recorded_and_filed(
        tg, sip, gateway, records, calls_end):
    client = tenants.straight_out(tg, client={
        "recording": True, "on_demand_recording": "service_code",
        "recording_service_code": "*1"})
    ph = phone(tg, sip, "recorded", (client.account, client.password))
    call = dial(tg, ph, "*1" + TOLL)
    out = gateway.wait_incoming(15)
    assert out.request.startswith(f"INVITE sip:{TOLL}@")   # the code stays with us
    sip.wait_for(lambda: call.confirmed, 10, "the recorded call answered")
    talking(sip, call, out)
    answered = time.monotonic()
    sip.sleep(2)                                          # two seconds of conversation
    call.hangup_with()
    talked = time.monotonic() - answered
    records.settled_xdrs(call.call_id, 1)
    rows: list = []

    def filed() -> bool:
        rows[:] = records.query("SELECT seconds, path FROM recordings WHERE call_id = %s",
                                call.call_id)
        return bool(rows)
    wait_until(filed, 20, "the recording filed")
    [(seconds, path)] = rows
    assert abs(float(seconds) - talked) < 1.5, (seconds, talked)
    with wave.open(path) as w:
        assert abs(w.getnframes() / w.getframerate() - float(seconds)) < 0.01
    listed = tg.cli("--json", "recording", "list", client.customer).stdout
    assert call.call_id not in listed and path in listed
    # the client may not remove recordings unless allowed; the operator may force it
    number = records.query("SELECT id FROM recordings WHERE call_id = %s", call.call_id)[0][0]
    refused = tg.cli("recording", "delete", str(number), check=False)
    assert refused.returncode == 2 and "may not remove recordings" in refused.stderr
    tg.cli("recording", "delete", str(number), "--force")
    assert not Path(path).exists()
    # a call without the code is not recorded
    plain = dial(tg, ph, TOLL)
    out = gateway.wait_incoming(15)
    sip.wait_for(lambda: plain.confirmed, 10, "a plain call answered")
    plain.hangup_with()
    records.settled_xdrs(plain.call_id, 1)
    assert records.query("SELECT 1 FROM recordings WHERE call_id = %s", plain.call_id) == []


@pytest.mark.parametrize("method", [INFO, RFC4733])
def test_a_code_keyed_during_the_call_starts_its_recording(
        tg, sip, gateway, records, calls_end, method):
    """SIP INFO keys reach Kamailio; RFC 4733 keys travel in the media, where rtpengine
    reports them to the recording-keys listener, which starts the recording itself."""
    client = tenants.straight_out(tg, client={
        "recording": True, "on_demand_recording": "dtmf", "recording_service_code": "*7"})
    ph = phone(tg, sip, "recorded-dtmf", (client.account, client.password))
    call = dial(tg, ph, TOLL)
    out = gateway.wait_incoming(15)
    sip.wait_for(lambda: call.confirmed, 10, "the call answered")
    talking(sip, call, out)
    sip.sleep(1)                       # a second before the code: not in the recording
    heard_by = "kamailio" if method == INFO else "recording-keys"
    # the far end keying the code records nothing: only the client's caller may
    if method == RFC4733:
        out.send_dtmf("*7")
        far = f"[{call.call_id}] RECORD: a key of the far end ignored"
        sip.wait_for(lambda: tg.log(heard_by).count(far) == 2, 10, "the far end's keys")
    # one key per press, as a person keys them (a burst can cross between workers)
    call.send_dtmf("*", method=method)
    kept = f"[{call.call_id}] RECORD: a key of the call kept (1 kept)"
    sip.wait_for(lambda: kept in tg.log(heard_by), 10, "the first key kept")
    call.send_dtmf("7", method=method)
    line = f"[{call.call_id}] RECORD: recording the call"
    sip.wait_for(lambda: line in tg.log(heard_by), 10, "the code starting the recording")
    keyed = time.monotonic()
    sip.sleep(2)
    call.hangup_with()
    recorded = time.monotonic() - keyed
    records.settled_xdrs(call.call_id, 1)
    rows: list = []

    def filed() -> bool:
        rows[:] = records.query("SELECT seconds FROM recordings WHERE call_id = %s",
                                call.call_id)
        return bool(rows)
    wait_until(filed, 20, "the recording filed")
    assert abs(float(rows[0][0]) - recorded) < 1.0, (rows, recorded)
