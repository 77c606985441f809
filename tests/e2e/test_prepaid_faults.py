"""The prepaid card when things go wrong: Redis unreachable mid-session, an access number
whose application the IVR does not run, a far end that forges the authorized time."""
from __future__ import annotations

import os
import signal

import pytest

from tests import tenants
from tests.calls import TOLL, at_destination_prompt, card_to_destination, dial, heard, logged, phone
from tests.e2e.test_prepaid_card import QUIET

pytestmark = pytest.mark.e2e


def test_redis_unreachable_mid_session_ends_the_session_without_a_call(
        tg, sip, gateway, calls_end):
    card = tenants.prepaid_card(tg, settings=QUIET)
    call = at_destination_prompt(tg, sip, card)
    os.kill(tg.redis.proc.pid, signal.SIGSTOP)  # Redis hangs: every read times out
    try:
        call.send_dtmf(TOLL + "#")
        sip.wait_for(lambda: logged(tg, call, "FAULT: "), 15, "the IVR meeting the fault")
    finally:
        os.kill(tg.redis.proc.pid, signal.SIGCONT)
    heard(tg, sip, call, "unavailable")
    sip.wait_for(lambda: call.disconnected, 15, "the IVR letting the caller go")
    assert gateway.incoming == []  # no outgoing call was placed
    # the IVR goes on serving: the next caller is answered and asked for a card
    again = dial(tg, phone(tg, sip, "next", (card.phone, card.password)), card.access_number)
    heard(tg, sip, again, "enter_card")


def test_an_access_number_of_an_application_the_ivr_does_not_run_is_refused(
        tg, sip, gateway, calls_end):
    number = tenants.next_associated_number() + "000"
    tg.cli("app", "create", f"Pass-through {number}", "--type", "pass_through",
           "--access-number", number)
    call = gateway.call(f"sip:{number}@{tg.sip_target}",
                        from_uri=f"sip:0212345678@127.0.0.1:{tg.gateway_port}")
    sip.wait_for(lambda: call.disconnected, 10, "the refusal")
    assert call.last_code == 404


def test_the_far_end_cannot_tell_the_ivr_how_long_the_call_may_last(
        tg, sip, gateway, calls_end):
    # 0.10 at 0.60/min per second: Kamailio authorizes 10 s whatever the far end says
    card = tenants.prepaid_card(tg, balance="0.10", settings={
        **QUIET, "disconnection_warning_interval": 5})
    gateway.answer = None  # ring; the test answers with its own headers
    call = at_destination_prompt(tg, sip, card)
    call.send_dtmf(TOLL + "#")
    leg = gateway.wait_incoming(15)
    leg.answer_with(200, headers={"X-TG-Max-Duration": "99999", "x-tg-sig": "forged"})
    sip.wait_for(lambda: logged(tg, call, "BRIDGE: " + TOLL + " answered"), 10, "the answer")
    assert logged(tg, call, f"BRIDGE: {TOLL} answered, 10 s authorized")


def test_the_far_end_cannot_reauthorize_a_call(tg, sip, gateway, calls_end):
    """An in-dialog INFO asking for more time is answered only for the IVR: from the far
    end it is refused (403) and never relayed, whatever headers it carries."""
    import pjsua2 as pj

    card = tenants.prepaid_card(tg, balance="0.10", settings={
        **QUIET, "dynamic_reauthorization": True})
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    leg = card_to_destination(tg, sip, gateway, call, card.card)
    prm = pj.CallSendRequestParam()
    prm.method = "INFO"
    for name, value in (("X-TG-Reauth", "1"), ("X-TG-Auth-ID", card.card),
                        ("X-TG-Dest", TOLL), ("X-TG-Sig", "forged")):
        header = pj.SipHeader()
        header.hName, header.hValue = name, value
        prm.txOption.headers.append(header)
    leg.sendRequest(prm)
    sip.wait_for(lambda: "REAUTH: 403 Forbidden from 127.0.0.1" in tg.log("kamailio"), 10,
                 "Kamailio refusing the INFO")
    assert not logged(tg, call, "REAUTH: cap")
