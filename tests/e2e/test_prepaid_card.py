"""Prepaid calling cards (voice-application-settings.txt, first section) through the real
stack: a caller dials an access number (from an office phone, or from the PSTN gateway with
its caller number), the IVR's prepaid application authenticates the card, the caller dials
out through Kamailio, and every leg is billed to the card with its access code.

Each scenario makes its own card service (tests/tenants.py prepaid_card) and waits on the
IVR's log lines ("[<call-id>] PROMPT: playing enter_card") and on audio reaching the phone.
"""
from __future__ import annotations

from decimal import Decimal

import pytest

from tests import tenants
from tests.calls import (
    DEMO,
    TOLL,
    at_destination_prompt,
    card_then_destination,
    card_to_destination,
    dial,
    from_the_pstn,
    heard,
    ivr_log,
    logged,
    phone,
    talking,
)

pytestmark = pytest.mark.e2e

QUIET = {"play_welcome_message": False}


def xdrs(records, session: str, count: int) -> dict[str, tuple]:
    """leg -> (account, cld, access code, duration, amount) once `count` xDRs are settled."""
    records.settled_xdrs(session, count)
    rows = records.query("SELECT leg, account_id, cld, access_code, duration, amount FROM xdrs"
                         " WHERE session_id = %s ORDER BY id", session)
    assert len(rows) == count, rows
    return {leg: tuple(rest) for leg, *rest in rows}


def test_a_card_number_keyed_in_on_an_office_phone_pays_for_the_call(
        tg, sip, gateway, records, calls_end):
    card = tenants.prepaid_card(tg, settings=QUIET, balance="5.00")
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    leg = card_to_destination(tg, sip, gateway, call, card.card)
    assert TOLL in leg.header("To") and card.phone in leg.header("From")
    assert not [h for h in leg.headers if h.startswith("x-tg-")]
    talking(sip, call, leg)
    leg.hangup_with()  # the far end hangs up: the caller may dial again
    heard(tg, sip, call, "enter_destination", times=2)
    call.hangup_with()
    legs = xdrs(records, call.call_id, 2)
    account, cld, code, duration, amount = legs["toll"]
    assert (account, cld, code) == (card.card, TOLL, "") and duration >= 1
    assert amount == Decimal("0.01") * duration  # 0.60/min per second
    # the call to the access number: on the card, not charged (no_charges, the default);
    # "Rate by" CLI (the default) puts the caller's number in the CLD the writer rates
    assert legs["ivr"][:3] == (card.card, card.phone, "") and legs["ivr"][4] == 0
    assert records.balance(card.card) == Decimal("5.00") - amount


def test_the_pstn_caller_is_known_by_ani_and_the_whole_session_is_charged(
        tg, sip, gateway, records, calls_end):
    card = tenants.prepaid_card(
        tg, ani_alias="ani44212345678", balance="5.00",
        settings={**QUIET, "ani_authentication": True, "ani_translation_rule": "s/^0/ani44/",
                  "incoming_session_accounting": "all_session_time",
                  "incoming_access_code_prefix": "IN", "rate_by": "cld"},
        rates={"": {"1": ("0.60", "1/1")}, "IN": {card_number_prefix(): ("0.60", "1/1")}})
    call = from_the_pstn(tg, gateway, card.access_number, "0212345678")
    heard(tg, sip, call, "enter_destination")  # no card number asked: the ANI is the card's
    assert logged(tg, call, "AUTH: card") and not logged(tg, call, "PROMPT: playing enter_card")
    call.send_dtmf(TOLL + "#")
    leg = gateway.wait_incoming(15)
    sip.wait_for(lambda: leg.confirmed, 10, "the destination answering")
    assert "0212345678" in leg.header("From")
    talking(sip, call, leg)
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the destination")
    legs = xdrs(records, call.call_id, 2)
    assert legs["toll"][:3] == (card.card, TOLL, "")
    account, cld, code, seconds, amount = legs["ivr"]
    # all session time outside the connected call, under IN, rated by the access number
    assert (account, cld, code) == (card.card, card.access_number, "IN")
    assert seconds >= 1 and amount == Decimal("0.01") * seconds


def card_number_prefix() -> str:
    """The IN tariff rates calls to access numbers: every one of the tests' starts 1997."""
    return "1997"


def test_a_warning_beeps_before_the_balance_runs_out_and_the_caller_may_dial_again(
        tg, sip, gateway, records, calls_end):
    # 0.10 at 0.60/min per second: 10 s; warn 5 s before, once
    card = tenants.prepaid_card(tg, balance="0.10", settings={
        **QUIET, "disconnection_warning_interval": 5, "disconnection_warning_type": "beep"})
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    leg = card_to_destination(tg, sip, gateway, call, card.card)
    talking(sip, call, leg)
    heard(tg, sip, call, "beep", timeout=15)
    assert logged(tg, call, "WARNING: 5 s left: beep")
    assert not leg.disconnected  # the beep comes before the cap
    sip.wait_for(lambda: leg.disconnected, 20, "the hard cap ending the call")
    heard(tg, sip, call, "enter_destination", times=2)
    call.hangup_with()
    legs = xdrs(records, call.call_id, 2)
    assert 1 <= legs["toll"][3] <= 10 and legs["toll"][4] <= Decimal("0.10")
    assert records.balance(card.card) >= 0


def test_the_first_call_is_rated_by_firstcall_the_next_by_the_grouping_code(
        tg, sip, gateway, records, calls_end):
    card = tenants.prepaid_card(
        tg, balance="5.00",
        settings={**QUIET, "grouping_access_code_prefix": "LOCAL",
                  "use_special_access_code_for_first_calls": True,
                  "use_fixed_access_code_for_first_calls": True},
        rates={"FIRSTCALL": {"1": ("0", "1/1")}, "LOCAL": {"1": ("0.60", "1/1")}})
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    first = card_to_destination(tg, sip, gateway, call, card.card)
    talking(sip, call, first)
    first.hangup_with()
    heard(tg, sip, call, "enter_destination", times=2)
    call.send_dtmf(TOLL + "#")
    second = gateway.wait_incoming(15, count=2)
    sip.wait_for(lambda: second.confirmed, 10, "the second call answered")
    talking(sip, call, second)
    call.hangup_with()
    sip.wait_for(lambda: second.disconnected, 10, "BYE reaching the second destination")
    records.settled_xdrs(call.call_id, 3)
    rows = records.query("SELECT access_code, amount FROM xdrs WHERE session_id = %s"
                         " AND leg = 'toll' ORDER BY id", call.call_id)
    assert [code for code, _ in rows] == ["FIRSTCALL", "LOCAL"]
    assert rows[0][1] == 0 and rows[1][1] > 0


def test_auto_registration_makes_the_next_call_pinless(tg, sip, gateway, records, calls_end):
    card = tenants.prepaid_card(tg, settings={
        **QUIET, "ani_authentication": True, "ani_translation_rule": "s/^0/ani44/",
        "auto_registration": True})
    ani = "0" + card.phone[-9:]
    call = from_the_pstn(tg, gateway, card.access_number, ani)
    heard(tg, sip, call, "enter_card")
    call.send_dtmf(card.card)
    heard(tg, sip, call, "register_ani")
    call.send_dtmf("1")
    heard(tg, sip, call, "enter_destination")
    call.hangup_with()
    alias = "ani44" + ani[1:]
    assert records.query("SELECT account_id FROM aliases WHERE id = %s", alias) == [(card.card,)]
    again = from_the_pstn(tg, gateway, card.access_number, ani)
    heard(tg, sip, again, "enter_destination")
    assert not logged(tg, again, "PROMPT: playing enter_card")


def test_a_silent_caller_is_asked_max_login_attempts_times_then_let_go(
        tg, sip, gateway, records, calls_end):
    card = tenants.prepaid_card(tg, settings={**QUIET, "max_login_attempts": 2,
                                              "default_prompt_timeout": 1})
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    heard(tg, sip, call, "enter_card", times=2)
    heard(tg, sip, call, "goodbye")
    sip.wait_for(lambda: call.disconnected, 15, "the IVR hanging up")
    assert records.query("SELECT count(*) FROM xdrs WHERE session_id = %s",
                         call.call_id) == [(0,)]  # nobody to bill: no card was named


def test_a_caller_hanging_up_at_the_prompt_leaves_no_session(tg, sip, gateway, calls_end):
    card = tenants.prepaid_card(tg, settings=QUIET)
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    heard(tg, sip, call, "enter_card")
    call.send_dtmf(card.card[:4])
    call.hangup_with()
    sip.wait_for(lambda: logged(tg, call, "HANGUP: caller hung up while asking"), 10,
                 "the IVR seeing the hangup")


def test_a_wrong_card_number_three_times_ends_the_call(tg, sip, gateway, calls_end):
    card = tenants.prepaid_card(tg, settings=QUIET)
    call = from_the_pstn(tg, gateway, card.access_number, "0200000000")
    for attempt in (1, 2, 3):
        heard(tg, sip, call, "enter_card", times=attempt)
        call.send_dtmf("9" * 11)
    heard(tg, sip, call, "goodbye")
    sip.wait_for(lambda: call.disconnected, 15, "the IVR hanging up")
    assert ivr_log(tg).count(f"[{call.call_id}] AUTH: card number not valid") == 3


def test_a_spanish_caller_hears_balance_and_time_in_spanish_and_uses_self_care(
        tg, sip, gateway, records, calls_end):
    card = tenants.prepaid_card(tg, balance="12.50", settings={
        **QUIET, "languages": ["en", "es"], "announce_balance": True, "announce_time": True,
        "self_care_menu": True, "announce_self_care_menu": True})
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    heard(tg, sip, call, "num_2")  # "... for Spanish, press 2"
    call.send_dtmf("2")
    heard(tg, sip, call, "enter_card")
    assert logged(tg, call, "LANGUAGE: caller chose es")
    assert "/es/enter_card.wav" in ivr_log(tg)
    call.send_dtmf(card.card)
    # twelve dollars and fifty cents, in Spanish
    sip.wait_for(lambda: logged(tg, call, "BALANCE: announcing your_balance_is num_12 "
                                          "cur_USD_majors and num_50 cur_USD_minors"), 15,
                 "the balance announcement")
    heard(tg, sip, call, "self_care_hint")
    call.send_dtmf("#")
    heard(tg, sip, call, "sc_balance")
    call.send_dtmf("4")
    heard(tg, sip, call, "enter_destination", times=2)
    # 12.50 at 0.60/min per second: 20 minutes and 50 seconds
    call.send_dtmf(TOLL + "#")
    heard(tg, sip, call, "you_have")
    assert logged(tg, call, "DIAL: " + TOLL + " under access code (plain), 1250 s")
    for word in ("num_20", "minutes", "num_50", "seconds", "for_this_call"):
        heard(tg, sip, call, word)
    leg = gateway.wait_incoming(15)
    sip.wait_for(lambda: leg.confirmed, 10, "the destination answering")
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the destination")


def test_the_readme_calling_card_walkthrough_on_the_demo_tenant(
        tg, sip, gateway, records, calls_end):
    """README "Try it: a prepaid calling card": Mark's softphone dials the access number
    16047899001, keys in card 55500000001, registers his number, hears his balance and
    time, calls out; the next call knows him by his number."""
    mark = phone(tg, sip, "demo-mark-card", DEMO["mark"])
    before = records.balance("55500000001")
    call = dial(tg, mark, "16047899001")
    heard(tg, sip, call, "welcome")
    heard(tg, sip, call, "enter_card")
    call.send_dtmf("55500000001")
    heard(tg, sip, call, "register_ani")
    call.send_dtmf("1")
    heard(tg, sip, call, "your_balance_is")
    heard(tg, sip, call, "enter_destination")
    call.send_dtmf(TOLL + "#")
    heard(tg, sip, call, "you_have")
    leg = gateway.wait_incoming(20)
    sip.wait_for(lambda: leg.confirmed, 10, "the demo destination answering")
    talking(sip, call, leg)
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the destination")
    legs = xdrs(records, call.call_id, 2)
    assert legs["toll"][:3] == ("55500000001", TOLL, "")
    assert legs["toll"][4] == Decimal("0.03")  # the first 30 s at 0.06/min
    assert records.balance("55500000001") == before - Decimal("0.03")
    again = dial(tg, mark, "16047899001")
    heard(tg, sip, again, "enter_destination")  # known by ANI: no card number asked
    assert not logged(tg, again, "PROMPT: playing enter_card")
    assert records.query("SELECT account_id FROM aliases WHERE id = 'ani17785551210'") == [
        ("55500000001",)]


def test_two_sessions_on_one_card_cannot_spend_more_than_it_holds(
        tg, sip, gateway, records, calls_end):
    # 0.10 at 0.60/min per second: the first call holds all of it
    card = tenants.prepaid_card(tg, balance="0.10", settings=QUIET)
    first_phone = phone(tg, sip, "first", (card.phone, card.password))
    second_phone = phone(tg, sip, "second", (card.phone, card.password))
    first = dial(tg, first_phone, card.access_number)
    leg = card_to_destination(tg, sip, gateway, first, card.card)
    second = dial(tg, second_phone, card.access_number)
    card_then_destination(tg, sip, second, card.card)
    heard(tg, sip, second, "insufficient_funds")
    assert logged(tg, second, "DIAL: " + TOLL + ": 0.00000 buys no time")
    assert len(gateway.incoming) == 1
    first.hangup_with()
    second.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the destination")
    records.settled_xdrs(first.call_id, 2)
    assert records.balance(card.card) >= 0


def test_a_card_blocked_during_the_session_is_refused_at_the_next_dial(
        tg, sip, gateway, calls_end):
    card = tenants.prepaid_card(tg, settings=QUIET)
    call = at_destination_prompt(tg, sip, card)
    tg.cli("account", "update", card.card, "--blocked", "true")
    call.send_dtmf(TOLL + "#")
    heard(tg, sip, call, "card_blocked")
    sip.wait_for(lambda: call.disconnected, 15, "the IVR letting the caller go")
    assert gateway.incoming == []


def test_a_top_up_during_the_call_lets_it_last_longer(tg, sip, gateway, records, calls_end):
    """Dynamic reauthorization: 0.10 buys 10 s; a top-up during the call moves the cap."""
    card = tenants.prepaid_card(tg, balance="0.10", settings={
        **QUIET, "dynamic_reauthorization": True, "disconnection_warning_interval": 100})
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    leg = card_to_destination(tg, sip, gateway, call, card.card)
    tg.cli("balance", "adjust", card.card, "1.00")
    # the IVR asks again 5 s into the call; Kamailio holds 1.10 now: 110 s
    sip.wait_for(lambda: logged(tg, call, "REAUTH: cap 10 -> 110 s"), 15, "the reauthorization")
    assert "REAUTH: payer " + card.card + ": cap 10 -> 110 s" in tg.log("kamailio")
    # the warning re-armed for 100 s before the new cap: 10 s into the call, past the old cap
    sip.wait_for(lambda: logged(tg, call, "WARNING: 100 s left"), 15, "the moved warning")
    assert not leg.disconnected and not call.disconnected
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the destination")
    toll = xdrs(records, call.call_id, 2)["toll"]
    assert toll[3] >= 10 and toll[4] == Decimal("0.01") * toll[3]
    assert records.balance(card.card) == Decimal("1.10") - toll[4]
