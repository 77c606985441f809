"""Personalized calling when things go wrong: wrong codes, codes of other customers,
forged internal headers, aliases that may not register, payers without funds, and
concurrent calls that would overspend. Real stack, pjsua2 phones, sipp for REGISTER.

Each scenario sets up its own office (tests/tenants.py), so a lockout, a spent credit
limit or a ban of one never decides another.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
import redis

from provisioning.xdr_writer import GROUP
from tests import sipp, tenants
from tests.calls import TOLL, dial, enter_code, ivr_said, phone, wrong_code_judged
from tests.records import wait_until
from tests.stack import sip_ping
from tollgate import keyspace

pytestmark = pytest.mark.e2e


def test_three_wrong_codes_hang_up_and_further_calls_are_locked_out(
        tg, sip, gateway, records, calls_end, office):
    jake = phone(tg, sip, "jake-wrong", office.jake)
    first = dial(tg, jake, TOLL)
    for failures, code in enumerate(("1357", "2468", "3579"), start=1):
        enter_code(tg, sip, first, code, times=failures)
        wrong_code_judged(tg, sip, office.jake.id, failures)
    sip.wait_for(lambda: first.disconnected, 30, "the IVR hanging up after the third code")
    assert gateway.incoming == []
    assert [r[:2] for r in records.settled_xdrs(first.call_id, 1)] == [("ivr", office.jake.id)]
    # two more wrong codes reach the lockout (5 per caller account across calls) ...
    second = dial(tg, jake, TOLL)
    for failures, code in enumerate(("4680", "5791"), start=4):
        enter_code(tg, sip, second, code, times=failures - 3)
        wrong_code_judged(tg, sip, office.jake.id, failures)
    sip.wait_for(lambda: ivr_said(tg, second, "LOCKOUT"), 20, "the lockout")
    second.hangup_with()
    # ... and then even the right code is not asked for
    third = dial(tg, jake, TOLL)
    sip.wait_for(lambda: ivr_said(tg, third, f"LOCKOUT: account {office.jake.id} is locked out")
                 and third.rx_packets() > 0, 15, "the IVR answering a locked-out account")
    third.send_dtmf("4545")
    sip.wait_for(lambda: third.disconnected, 20, "the IVR turning the caller away")
    assert gateway.incoming == []
    assert not ivr_said(tg, third, "PROMPT: playing enter_code")


def test_a_code_of_another_customers_account_is_refused(tg, sip, gateway, records, calls_end,
                                                        office):
    # another customer whose account's alias uses this office's associated number
    other = tenants.office(tg, "other", pins={"other": "7777"},
                           associated_number=office.associated_number).other
    mark = phone(tg, sip, "mark-other", office.mark)
    call = dial(tg, mark, TOLL)
    enter_code(tg, sip, call, "7777")
    wrong_code_judged(tg, sip, office.mark.id, 1)
    assert gateway.incoming == []
    call.hangup_with()
    sip.wait_for(lambda: call.disconnected, 10, "hangup")
    assert [r[:2] for r in records.settled_xdrs(call.call_id, 1)] == [("ivr", office.mark.id)]
    assert records.balance(other.id) == 0


@pytest.mark.parametrize("name", ["X-TG-Auth-ID", "x-tg-auth-id ", "X-Tg-AUTH-id"])
def test_internal_headers_from_a_phone_bill_nobody_else(tg, sip, gateway, records, calls_end,
                                                        office, name):
    mark = phone(tg, sip, "mark-forger", office.mark)
    before = records.balance(office.rachel.id)
    forged = {name: office.rachel.auth_id, "X-TG-Account": office.rachel.id,
              "X-TG-Session": "forged", "X-TG-Expires": "4102444800", "X-TG-Sig": "00" * 32}
    call = dial(tg, mark, TOLL, headers=forged)
    # the IVR took the call as Mark's and asks for a code: no toll leg can exist without one
    sip.wait_for(lambda: call.confirmed and ivr_said(tg, call, "PROMPT: account "
                                                     f"{office.mark.id} dialed {TOLL}"),
                 15, "the IVR answering (not the gateway)")
    assert gateway.incoming == []
    call.hangup_with()
    sip.wait_for(lambda: call.disconnected, 10, "hangup")
    assert [r[:2] for r in records.settled_xdrs(call.call_id, 1)] == [("ivr", office.mark.id)]
    assert records.balance(office.rachel.id) == before


def test_register_as_a_pin_alias_is_refused(tg, office):
    rachel = office.rachel
    result = sipp.run("register", tg.sip_target, service=rachel.auth_id.replace("#", "%23"),
                      user=rachel.auth_id, password=rachel.password)
    assert not result.ok
    assert "SIP/2.0 403 Forbidden" in (result.logs / "messages.log").read_text()


def test_a_payer_without_funds_hears_the_refusal_and_pays_nothing(
        tg, sip, gateway, records, calls_end):
    office = tenants.office(tg, credit_limits={"rachel": "0"})
    mark = phone(tg, sip, "mark-broke", office.mark)
    call = dial(tg, mark, TOLL)
    enter_code(tg, sip, call, "4545")
    sip.wait_for(lambda: call.disconnected, 30, "the IVR hanging up after the refusal prompt")
    assert gateway.incoming == []
    assert ivr_said(tg, call, "PROMPT: playing insufficient_funds"), "no refusal prompt played"
    assert call.rx_packets() > 0
    assert [r[:2] for r in records.settled_xdrs(call.call_id, 1)] == [("ivr", office.mark.id)]
    assert records.balance(office.rachel.id) == 0


def test_two_concurrent_calls_cannot_spend_more_than_the_balance(
        tg, sip, gateway, records, calls_end):
    # Rachel may owe one minute of a 0.02/min toll number; Mark and Jake both key in her PIN
    office = tenants.office(tg, credit_limits={"rachel": "0.02"})
    mark = phone(tg, sip, "mark-twice", office.mark)
    jake = phone(tg, sip, "jake-twice", office.jake)
    calls = [dial(tg, mark, TOLL), dial(tg, jake, TOLL)]
    for call in calls:
        sip.wait_for(lambda: call.confirmed, 15, "the IVR answering both")
    for call in calls:
        enter_code(tg, sip, call, "4545")
    # one call reaches the gateway, the other is refused for funds and told so
    sip.wait_for(lambda: gateway.incoming and any(
        ivr_said(tg, c, "REFUSED: toll leg answered 402") for c in calls), 20,
        "one toll leg answered and the other refused with 402")
    assert len(gateway.incoming) == 1, "both calls reached the gateway"
    for call in calls:
        call.hangup_with()
    sip.wait_for(lambda: all(c.disconnected for c in calls), 15, "hangups")
    # one IVR leg each and one toll leg: three xDRs in all
    sip.wait_for(lambda: sum(len(records.xdrs(c.call_id)) for c in calls) >= 3, 20, "3 xDRs")
    wait_until(records.written_out, 20, "the xDR writer emptying the stream")
    rows = [r for c in calls for r in records.xdrs(c.call_id)]
    toll_rows = [r for r in rows if r[0] == "toll"]
    assert len(rows) == 3 and len(toll_rows) == 1
    assert toll_rows[0][1] == office.rachel.id
    assert records.balance(office.rachel.id) == toll_rows[0][4] <= Decimal("0.02")


def test_the_call_ends_when_the_payer_can_pay_no_more(tg, sip, gateway, records, calls_end):
    # 1999... costs 0.60/min billed per second (0.01 a second): Rachel may owe 3 seconds
    office = tenants.office(tg, credit_limits={"rachel": "0.03"},
                            rates={"1999": ("0.60", "1/1")})
    mark = phone(tg, sip, "mark-capped", office.mark)
    call = dial(tg, mark, "19995550100")
    enter_code(tg, sip, call, "4545")
    leg = gateway.wait_incoming(15)
    # The IVR ends its toll leg a second before the cap Kamailio told it (X-TG-Max-Duration),
    # because Kamailio 5.6.3's dialog timer can lose one of its two BYEs; Kamailio's cap
    # stays the backstop. The xDR says the call ended at its authorized maximum either way.
    sip.wait_for(lambda: leg.disconnected or ivr_said(tg, call, "HANGUP: toll leg hung up"),
                 30, "Kamailio ending the toll leg at the cap")
    rows = [r for r in records.settled_xdrs(call.call_id, 2) if r[0] == "toll"]
    assert rows and rows[0][3] <= 3
    reason = records.query("SELECT reason FROM xdrs WHERE session_id = %s AND leg = 'toll'",
                           call.call_id)
    assert reason == [("Authorized maximum reached",)]
    assert records.balance(office.rachel.id) == rows[0][4] <= Decimal("0.03")


def test_no_xdr_is_lost_when_redis_restarts_mid_call_and_the_writer_dies(
        tg, sip, gateway, records, calls_end, office):
    rachel = phone(tg, sip, "rachel-outage", office.rachel)
    calls = []  # two toll-free calls, both up when Redis goes
    for i in range(2):
        calls.append(dial(tg, rachel, f"1800555010{i}"))
        sip.wait_for(lambda: calls[-1].confirmed, 15, f"toll-free call {i} answered")
    tg.redis.stop()
    calls[0].hangup_with()          # its xDR event is spooled by Kamailio
    sip.wait_for(lambda: calls[0].disconnected, 10, "first hangup")
    tg.redis.start()
    # every Kamailio worker held connections to the Redis that went away: the requests that
    # follow at once must not fail on them (8 REGISTERs, spread over the 4 workers)
    again = sipp.run("register", tg.sip_target, service=office.rachel.id,
                     user=office.rachel.id, password=office.rachel.password, calls=8)
    assert again.ok, f"a request right after the Redis restart failed: {again.logs}"
    tg.stop_program("xdr-writer")   # SIGTERM; the next kill is the hard one
    for call in calls[1:]:
        call.hangup_with()
    sip.wait_for(lambda: all(c.disconnected for c in calls), 10, "hangups")
    started = tg.log("xdr-writer").count("XDR: writer")
    tg.restart("xdr-writer")
    sip.wait_for(lambda: tg.log("xdr-writer").count("XDR: writer") > started, 15,
                 "the restarted writer consuming")
    tg.kill_program("xdr-writer")
    tg.restart("xdr-writer")
    for call in calls:
        records.wait_xdrs(call.call_id, 1, timeout=30)
    wait_until(records.written_out, 30, "the xDR writer emptying the stream")
    for call in calls:
        assert len(records.xdrs(call.call_id)) == 1, call.call_id
    pending = redis.Redis(port=tg.settings.redis_port).xpending(keyspace.XDR_STREAM, GROUP)
    assert pending["pending"] == 0


def test_a_source_guessing_passwords_is_banned_and_others_are_not(tg, office):
    host, port = tg.settings.sip_address, tg.settings.sip_port
    mark = office.mark.id
    assert sip_ping(host, port, source="127.0.0.2").startswith("SIP/2.0 200")
    # ten wrong passwords ban the source; a guess answered with a fresh challenge (stale
    # nonce) is not a failure, so guess in rounds until the source goes silent
    for _ in range(5):
        guesses = sipp.run("register", tg.sip_target, service=mark, user=mark,
                           password="guess", calls=5, source="127.0.0.2", timeout=8)
        assert not guesses.ok
        if sip_ping(host, port, source="127.0.0.2") == "":
            break
    assert sip_ping(host, port, source="127.0.0.2") == ""   # banned: dropped silently
    assert sip_ping(host, port, source="127.0.0.3").startswith("SIP/2.0 200")
    assert "banned after 10 failures" in tg.log("kamailio")
