"""Plain routing through the stack: calls from the PSTN gateway to an account's phone,
a caller giving up while the callee rings (CANCEL), and refusals with precise answers.
"""
from __future__ import annotations

import pytest

from tests import tenants
from tests.calls import dial, phone, talking

pytestmark = pytest.mark.e2e


def test_a_call_from_the_pstn_gateway_rings_the_dialed_accounts_phone(
        tg, sip, gateway, records, calls_end, office):
    jake = phone(tg, sip, "jake-in", office.jake)
    call = gateway.call(f"sip:{office.jake.id}@{tg.sip_target}")
    incoming = jake.wait_incoming(15)
    sip.wait_for(lambda: call.confirmed, 10, "Jake answering the PSTN call")
    assert office.jake.id in incoming.header("To")
    talking(sip, call, incoming)
    call.hangup_with()
    sip.wait_for(lambda: incoming.disconnected, 10, "BYE reaching Jake")
    rows = records.settled_xdrs(call.call_id, 1)
    assert [r[:2] for r in rows] == [("in", office.jake.id)]
    assert rows[0][4] == 0


def test_a_call_in_from_the_pstn_costs_the_callee_nothing(tg, sip, gateway, records, calls_end):
    # the callee's own numbers are priced for outgoing calls here: an incoming call is
    # rated with the access code IN (none in this product), never at that price
    assoc = tenants.next_associated_number()
    office = tenants.office(tg, "jake", associated_number=assoc, rates={assoc: ("0.60", "1/1")})
    jake = phone(tg, sip, "jake-in-priced", office.jake)
    call = gateway.call(f"sip:{office.jake.id}@{tg.sip_target}")
    incoming = jake.wait_incoming(15)
    sip.wait_for(lambda: call.confirmed, 10, "Jake answering the PSTN call")
    talking(sip, call, incoming)
    call.hangup_with()
    sip.wait_for(lambda: incoming.disconnected, 10, "BYE reaching Jake")
    rows = records.settled_xdrs(call.call_id, 1)
    assert [(r[0], r[1], r[4]) for r in rows] == [("in", office.jake.id, 0)]
    assert records.query("SELECT access_code FROM xdrs WHERE call_id = %s",
                         call.call_id) == [("IN",)]


def test_the_gateway_calling_an_unknown_number_gets_404(tg, sip, gateway, calls_end):
    # no account has this number: tests.tenants numbers its accounts with 12 digits
    call = gateway.call(f"sip:19998887777@{tg.sip_target}")
    sip.wait_for(lambda: call.disconnected, 10, "the refusal")
    assert call.last_code == 404


def test_a_caller_giving_up_while_the_callee_rings_cancels_the_call(
        tg, sip, gateway, records, calls_end, office):
    rachel = phone(tg, sip, "rachel-cancel", office.rachel)
    jake = phone(tg, sip, "jake-ringing", office.jake)
    jake.answer = None  # rings with 180 until answered
    call = dial(tg, rachel, office.jake.id)
    ringing = jake.wait_incoming(15)
    sip.wait_for(lambda: 180 in call.codes, 10, "ringback")
    call.hangup_with()  # CANCEL
    sip.wait_for(lambda: ringing.disconnected and call.disconnected, 10, "CANCEL reaching Jake")
    assert call.last_code == 487
    rows = records.settled_xdrs(call.call_id, 1)
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [("onnet", office.rachel.id, 0, 0)]


def test_a_call_to_an_unregistered_colleague_gets_480(tg, sip, gateway, calls_end, office):
    rachel = phone(tg, sip, "rachel-480", office.rachel)
    call = dial(tg, rachel, office.jake.id)  # Jake has an account but no phone registered
    sip.wait_for(lambda: call.disconnected, 10, "the refusal")
    assert call.last_code == 480
