"""Prepaid card authentication and accounting modes through the real stack, and a caller
leaving at each step: ANI + auth code, the service password, the incoming session
accounting modes, hangups at every prompt, PostgreSQL and rtpengine failing mid-session."""
from __future__ import annotations

from decimal import Decimal

import pytest

from tests import tenants
from tests.calls import (
    TOLL,
    card_then_destination,
    dial,
    from_the_pstn,
    heard,
    logged,
    phone,
    talking,
)
from tests.e2e.test_prepaid_card import QUIET, xdrs

pytestmark = pytest.mark.e2e


def test_ani_and_auth_code_bills_the_employee_of_the_company_number(
        tg, sip, gateway, records, calls_end):
    """The company's main line (ANI) is an account whose associated number (the company
    ID), # and the auth code the caller keys in name the employee's account, which pays."""
    company_id = tenants.next_associated_number()
    employee = tenants.prepaid_card(tg, card_fields={"associated_number": company_id}, settings={
        **QUIET, "ani_authentication": True, "use_ani_and_auth_code": True,
        "ani_translation_rule": "s/^0/ani44/"})
    main_line = "0" + company_id[1:] + "00"
    tg.cli("account", "create", "ani44" + main_line[1:], "--customer", employee.customer,
           "--product", employee.customer, "--billing-model", "debit",
           "--associated-number", company_id)
    tg.cli("alias", "create", f"{company_id}#5555", "--account", employee.card)
    call = from_the_pstn(tg, gateway, employee.access_number, main_line)
    heard(tg, sip, call, "enter_code")
    call.send_dtmf("5555")
    heard(tg, sip, call, "enter_destination")
    assert logged(tg, call, f"AUTH: card {employee.card} authenticated by ani")
    call.send_dtmf(TOLL + "#")
    leg = gateway.wait_incoming(15)
    sip.wait_for(lambda: leg.confirmed, 10, "the destination answering")
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the destination")
    assert xdrs(records, call.call_id, 2)["toll"][0] == employee.card


def test_the_service_password_is_asked_after_the_card_number(tg, sip, gateway, calls_end):
    card = tenants.prepaid_card(tg, service_password="2468",
                                settings={**QUIET, "check_service_password": "always"})
    call = from_the_pstn(tg, gateway, card.access_number, "0211111111")
    heard(tg, sip, call, "enter_card")
    call.send_dtmf(card.card)
    heard(tg, sip, call, "enter_password")
    call.send_dtmf("1357")
    heard(tg, sip, call, "invalid_password")
    heard(tg, sip, call, "enter_password", times=2)
    call.send_dtmf("2468")
    heard(tg, sip, call, "enter_destination")
    call.hangup_with()


@pytest.mark.parametrize("mode, answered, billed", [
    ("outgoing_calls_only", True, "talk"),
    ("outgoing_calls_only", False, "nothing"),
    ("all_session_time_unless_all_fail", True, "session"),
    ("all_session_time_unless_all_fail", False, "nothing"),
])
def test_incoming_session_accounting(tg, sip, gateway, records, calls_end, mode, answered,
                                     billed):
    card = tenants.prepaid_card(
        tg, balance="5.00",
        settings={**QUIET, "incoming_session_accounting": mode,
                  "incoming_access_code_prefix": "IN", "rate_by": "cld"},
        rates={"": {"1": ("0.60", "1/1")}, "IN": {"1997": ("0.60", "1/1")}})
    if not answered:
        gateway.answer, gateway.reason = 486, "Busy Here"
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    card_then_destination(tg, sip, call, card.card)
    leg = gateway.wait_incoming(15)
    if answered:
        sip.wait_for(lambda: leg.confirmed, 10, "the destination answering")
        talking(sip, call, leg)
        leg.hangup_with()
    heard(tg, sip, call, "enter_destination", times=2)
    call.hangup_with()
    legs = xdrs(records, call.call_id, 2)
    toll, session = legs["toll"], legs["ivr"]
    assert session[:3] == (card.card, card.access_number, "IN")
    if billed == "nothing":
        assert session[3:] == (0, 0)
    elif billed == "talk":
        assert session[3] == toll[3] and session[4] == Decimal("0.01") * toll[3]
    else:  # the whole session: more than the talk time
        assert session[3] > toll[3] and session[4] == Decimal("0.01") * session[3]


@pytest.mark.parametrize("step", ["enter_card", "enter_destination", "ringing", "talking"])
def test_a_caller_hanging_up_at_each_step_leaves_nothing_behind(
        tg, sip, gateway, records, calls_end, step):
    card = tenants.prepaid_card(tg, settings=QUIET)
    gateway.answer = None if step == "ringing" else 200
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    heard(tg, sip, call, "enter_card")
    if step != "enter_card":
        call.send_dtmf(card.card)
        heard(tg, sip, call, "enter_destination")
    leg = None
    if step in ("ringing", "talking"):
        call.send_dtmf(TOLL + "#")
        leg = gateway.wait_incoming(15)
        if step == "talking":
            sip.wait_for(lambda: leg.confirmed, 10, "the destination answering")
    call.hangup_with()
    sip.wait_for(lambda: logged(tg, call, "HANGUP: caller hung up"), 10, "the IVR seeing it")
    if leg is not None:
        sip.wait_for(lambda: leg.disconnected, 10, "the outgoing leg ended with the caller")
    if step == "enter_card":
        return  # no card was named: nobody to bill
    legs = xdrs(records, call.call_id, 2 if leg is not None else 1)
    assert legs["ivr"][0] == card.card
    if step == "ringing":
        assert records.query("SELECT sip_code, duration, amount FROM xdrs WHERE call_id <> %s"
                             " AND session_id = %s", call.call_id, call.call_id) == [
            (487, 0, 0)]
    assert records.query("SELECT count(*) FROM xdrs WHERE session_id = %s",
                         call.call_id) == [(2 if leg is not None else 1,)]


def test_postgresql_down_during_auto_registration_still_lets_the_caller_call(
        tg, sip, gateway, calls_end):
    card = tenants.prepaid_card(tg, settings={
        **QUIET, "ani_authentication": True, "auto_registration": True,
        "register_without_confirmation": True})
    tg.pg.stop()
    try:
        call = from_the_pstn(tg, gateway, card.access_number, "0233333333")
        heard(tg, sip, call, "enter_card")
        call.send_dtmf(card.card)
        heard(tg, sip, call, "enter_destination")
        assert logged(tg, call, "REGISTER: ANI 0233333333 could not be registered")
        call.send_dtmf(TOLL + "#")
        leg = gateway.wait_incoming(15)
        sip.wait_for(lambda: leg.confirmed, 10, "the destination answering")
        call.hangup_with()
    finally:
        tg.pg.start()
