"""Plain routing through the stack: calls from the PSTN gateway to an account's phone,
a caller giving up while the callee rings (CANCEL), and refusals with precise answers.
"""
from __future__ import annotations

import pytest

from tests.e2e.test_personalized_calling import CLOUD_PBX, dial, phone

pytestmark = pytest.mark.e2e

RACHEL, JAKE = CLOUD_PBX["rachel"][0], CLOUD_PBX["jake"][0]


def test_a_call_from_the_pstn_gateway_rings_the_dialed_accounts_phone(
        tg, sip, gateway, records, calls_end):
    jake = phone(tg, sip, "jake-in", CLOUD_PBX["jake"])
    call = gateway.call(f"sip:{JAKE}@{tg.sip_target}")
    incoming = jake.wait_incoming(15)
    sip.wait_for(lambda: call.confirmed, 10, "Jake answering the PSTN call")
    assert JAKE in incoming.header("To")
    sip.sleep(1.0)
    call.hangup_with()
    sip.wait_for(lambda: incoming.disconnected, 10, "BYE reaching Jake")
    rows = records.wait_xdrs(call.call_id, 1)
    assert [r[:2] for r in rows] == [("in", JAKE)]
    assert rows[0][4] == 0


def test_the_gateway_calling_an_unknown_number_gets_404(tg, sip, gateway, calls_end):
    call = gateway.call(f"sip:19998887777@{tg.sip_target}")
    sip.wait_for(lambda: call.disconnected, 10, "the refusal")
    assert call.last_code == 404


def test_a_caller_giving_up_while_the_callee_rings_cancels_the_call(
        tg, sip, gateway, records, calls_end):
    rachel = phone(tg, sip, "rachel-cancel", CLOUD_PBX["rachel"])
    jake = phone(tg, sip, "jake-ringing", CLOUD_PBX["jake"])
    jake.answer = None  # rings with 180 until answered
    call = dial(tg, rachel, JAKE)
    ringing = jake.wait_incoming(15)
    sip.wait_for(lambda: 180 in call.codes, 10, "ringback")
    call.hangup_with()  # CANCEL
    sip.wait_for(lambda: ringing.disconnected and call.disconnected, 10, "CANCEL reaching Jake")
    assert call.last_code == 487
    rows = records.wait_xdrs(call.call_id, 1)
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [("onnet", RACHEL, 0, 0)]


def test_a_call_to_an_unregistered_colleague_gets_480(tg, sip, gateway, calls_end):
    rachel = phone(tg, sip, "rachel-480", CLOUD_PBX["rachel"])
    tg.cli("account", "create", "17785551288", "--customer", "Smart Calls, Ltd.",
           "--product", "Smart Calls Office", "--password", "pw-288")
    call = dial(tg, rachel, "17785551288")  # an account with no phone registered
    sip.wait_for(lambda: call.disconnected, 10, "the refusal")
    assert call.last_code == 480
