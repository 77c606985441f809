"""Prepaid card options (voice-application-settings.txt, first section) through the real
stack that the unit tests of ivr/apps/prepaid.py and billing/prepaid.py cover alone: the
self-care menu, the service password modes, a card expiring mid-session, the associated
number dialed at once, the first-call and access-number access codes, the manual fallback
after ANI + auth code, warnings and music, dial attempts, the session's access code with
no incoming prefix, and a caller hanging up at every question.

Each scenario makes its own card service (tests/tenants.py prepaid_card) and waits on the
IVR's log lines, audio reaching the phone, xDR rows and metrics, never on a pause.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tests import tenants
from tests.calls import (
    TOLL,
    at_destination_prompt,
    card_to_destination,
    dial,
    from_the_pstn,
    heard,
    ivr_log,
    logged,
    phone,
    talking,
)
from tests.e2e.test_prepaid_card import QUIET, xdrs
from tests.phones import PhoneCall
from tests.records import wait_until
from tollgate import keyspace

pytestmark = pytest.mark.e2e

ANI_LOGIN = {"ani_authentication": True, "ani_translation_rule": "s/^0/ani44/"}
SPEED_DIAL = "12125550188"  # a card's associated number: not the number the tests dial


def fresh_ani() -> tuple[str, str]:
    """A PSTN caller number of this scenario alone, and its alias after s/^0/ani44/."""
    ani = "0" + tenants.next_associated_number()[1:] + "11"
    return ani, "ani44" + ani[1:]


def second_card(tg, card: tenants.CardTenant, balance: str = "3.00") -> str:
    """Another card of the same service, made with the CLI as an operator would."""
    number = card.card[:-3] + "556"
    tg.cli("account", "create", number, "--customer", card.customer, "--product",
           card.customer, "--billing-model", "debit", "--balance", balance)
    return number


def rate_access_code(tg, card: tenants.CardTenant, code: str, tariff_code: str) -> None:
    """Give the card's product a rating entry `code` (FIRST#<access number>, the access
    number...) by the tariff tenants.prepaid_card made for `tariff_code`, plain calls kept."""
    tg.cli("product", "update", card.customer, "--rating", f"{card.customer} plain",
           "--rating", f"{code}={card.customer} {tariff_code}")


def company_line(tg, card: tenants.CardTenant, company_id: str) -> str:
    """The company's main line for ANI + auth code: an account named by the translated ANI
    whose associated number is the company ID; its auth code 5555 names the card."""
    main_line = "0" + company_id[1:] + "00"
    tg.cli("account", "create", "ani44" + main_line[1:], "--customer", card.customer,
           "--product", card.customer, "--billing-model", "debit",
           "--associated-number", company_id)
    tg.cli("alias", "create", f"{company_id}#5555", "--account", card.card)
    return main_line


def metric_sum(records, name: str) -> float:
    """A metric summed over every IVR process (and label) that reports it."""
    return sum(value for sample, value in records.metrics().items()
               if sample == name or sample.startswith(name + "{"))


def active_sessions(records) -> float:
    return metric_sum(records, "ivr_sessions_active")


def session_rows(records, call) -> list[tuple]:
    """(account, access code, duration, amount) of the session's xDRs of leg ivr, once the
    writer has written out every event."""
    wait_until(records.written_out, 20, "the xDR writer emptying the stream")
    return records.query("SELECT account_id, access_code, duration, amount FROM xdrs"
                         " WHERE session_id = %s AND leg = 'ivr'", call.call_id)


def toll_codes(records, call) -> list[tuple]:
    """(access code, sip code, amount) of the session's outgoing legs, in order."""
    return records.query("SELECT access_code, sip_code, amount FROM xdrs WHERE session_id = %s"
                         " AND leg = 'toll' ORDER BY id", call.call_id)


@contextmanager
def silent_gateway(gateway):
    """The gateway takes INVITEs without a word (no 180 yet): the test rings and answers."""
    def take(prm) -> None:
        call = PhoneCall(gateway, prm.callId, prm.rdata.wholeMsg)
        gateway.calls.append(call)
        gateway.incoming.append(call)
    gateway._incoming = take
    try:
        yield
    finally:
        del gateway._incoming


# --- 1. the self-care menu ----------------------------------------------------------------

def test_another_card_from_self_care_pays_for_the_next_call(tg, sip, gateway, records,
                                                             calls_end):
    card = tenants.prepaid_card(tg, settings={**QUIET, "self_care_menu": True})
    other = second_card(tg, card)
    call = at_destination_prompt(tg, sip, card)
    call.send_dtmf("#")
    heard(tg, sip, call, "sc_another_card")
    call.send_dtmf("1")
    heard(tg, sip, call, "enter_card", times=2)
    call.send_dtmf(other)
    heard(tg, sip, call, "enter_destination", times=2)
    assert logged(tg, call, f"AUTH: card {other} authenticated by pin")
    call.send_dtmf(TOLL + "#")
    leg = gateway.wait_incoming(15)
    sip.wait_for(lambda: leg.confirmed, 10, "the destination answering")
    talking(sip, call, leg)
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the destination")
    legs = xdrs(records, call.call_id, 2)
    assert legs["toll"][:2] == (other, TOLL) and legs["toll"][4] > 0
    assert legs["ivr"][0] == other
    assert records.balance(card.card) == Decimal("5.00")
    assert records.balance(other) == Decimal("3.00") - legs["toll"][4]


new_voucher = tenants.new_voucher


def key_voucher(tg, sip, call, voucher: str) -> None:
    """From the destination prompt: the self-care menu, voucher top-up, the number."""
    call.send_dtmf("#")
    heard(tg, sip, call, "sc_voucher")
    call.send_dtmf("2")
    heard(tg, sip, call, "enter_voucher")
    call.send_dtmf(voucher)


def test_a_voucher_from_self_care_tops_up_the_card_before_the_next_call(
        tg, sip, gateway, records, calls_end):
    card = tenants.prepaid_card(tg, settings={**QUIET, "self_care_menu": True})
    voucher = new_voucher(tg, "2.50")
    call = at_destination_prompt(tg, sip, card)
    key_voucher(tg, sip, call, voucher)
    heard(tg, sip, call, "voucher_accepted")
    heard(tg, sip, call, "enter_destination", times=2)
    assert logged(tg, call, f"VOUCHER: card {card.card} credited 2.5")
    assert voucher not in ivr_log(tg)  # a voucher number is never logged
    assert records.balance(card.card) == Decimal("7.50")
    assert records.query("SELECT kind, amount FROM balance_operations WHERE account_id = %s",
                         card.card) == [("voucher", Decimal("2.50000"))]
    # the session goes on: the next call is paid from the topped-up card
    call.send_dtmf(TOLL + "#")
    leg = gateway.wait_incoming(15)
    sip.wait_for(lambda: leg.confirmed, 10, "the destination answering")
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the destination")
    assert xdrs(records, call.call_id, 2)["toll"][:2] == (card.card, TOLL)


def test_a_used_voucher_is_refused_and_the_card_keeps_its_balance(tg, sip, records,
                                                                   calls_end):
    card = tenants.prepaid_card(tg, settings={**QUIET, "self_care_menu": True})
    voucher = new_voucher(tg, "1")
    tg.cli("voucher", "redeem", voucher, card.card)  # used already (by the operator)
    call = at_destination_prompt(tg, sip, card)
    key_voucher(tg, sip, call, voucher)
    heard(tg, sip, call, "invalid_voucher")
    assert logged(tg, call, "VOUCHER: voucher number not valid")
    assert records.balance(card.card) == Decimal("6.00")  # 5.00 + the operator's 1.00


def test_ani_deregistration_removes_the_alias_and_the_next_call_asks_for_the_card(
        tg, sip, gateway, records, calls_end):
    ani, alias = fresh_ani()
    card = tenants.prepaid_card(tg, ani_alias=alias, settings={
        **QUIET, **ANI_LOGIN, "self_care_menu": True, "allow_ani_deregistration": True})
    assert records.query("SELECT account_id FROM aliases WHERE id = %s", alias) == [
        (card.card,)]
    call = from_the_pstn(tg, gateway, card.access_number, ani)
    heard(tg, sip, call, "enter_destination")  # known by its ANI
    call.send_dtmf("#")
    heard(tg, sip, call, "sc_deregister")
    call.send_dtmf("3")
    heard(tg, sip, call, "ani_deregistered")
    heard(tg, sip, call, "enter_destination", times=2)
    assert records.query("SELECT account_id FROM aliases WHERE id = %s", alias) == []
    call.hangup_with()
    again = from_the_pstn(tg, gateway, card.access_number, ani)
    heard(tg, sip, again, "enter_card")
    assert logged(tg, again, f"AUTH: ANI {ani} -> {alias} is no account")


def test_a_pstn_caller_holds_a_call_slot_of_the_cards_client_until_the_session_ends(
        tg, sip, gateway, records, calls_end):
    """A call in from the PSTN is an external call of the card's client once the card is
    known: with max calls 1 a second PSTN caller of the same client is let go with the
    notification, and gets in once the first session is over."""
    card = tenants.prepaid_card(tg, settings=QUIET)
    other = second_card(tg, card)
    tg.cli("customer", "update", card.customer, "--max-calls", "1")
    [(client,)] = records.query("SELECT id FROM customers WHERE name = %s", card.customer)
    slots, rds = keyspace.call_slots(client), records.redis()
    first = from_the_pstn(tg, gateway, card.access_number, fresh_ani()[0])
    heard(tg, sip, first, "enter_card")
    assert rds.hlen(slots) == 0  # no slot before the card is known
    first.send_dtmf(card.card)
    heard(tg, sip, first, "enter_destination")
    assert rds.hkeys(slots) == [first.call_id.encode()]
    second = from_the_pstn(tg, gateway, card.access_number, fresh_ani()[0])
    heard(tg, sip, second, "enter_card")
    second.send_dtmf(other)
    heard(tg, sip, second, "max_calls_reached")
    assert logged(tg, second, f"POLICY: client {client} has its 1 calls already")
    sip.wait_for(lambda: second.disconnected, 20, "the IVR letting the second caller go")
    first.hangup_with()
    wait_until(lambda: rds.hlen(slots) == 0, 15, "the first session's slot back")
    third = from_the_pstn(tg, gateway, card.access_number, fresh_ani()[0])
    heard(tg, sip, third, "enter_card")
    third.send_dtmf(other)
    heard(tg, sip, third, "enter_destination")
    assert rds.hkeys(slots) == [third.call_id.encode()]


# --- 2. the service password modes ---------------------------------------------------------

def test_only_pin_asks_the_password_after_the_pin_not_after_the_ani(
        tg, sip, gateway, calls_end):
    ani, alias = fresh_ani()
    stranger, _ = fresh_ani()
    card = tenants.prepaid_card(tg, ani_alias=alias, service_password="2468", settings={
        **QUIET, **ANI_LOGIN, "check_service_password": "only_pin"})
    by_ani = from_the_pstn(tg, gateway, card.access_number, ani)
    heard(tg, sip, by_ani, "enter_destination")
    assert logged(tg, by_ani, f"AUTH: card {card.card} authenticated by ani")
    assert not logged(tg, by_ani, "PROMPT: playing enter_password")
    by_ani.hangup_with()
    by_pin = from_the_pstn(tg, gateway, card.access_number, stranger)
    heard(tg, sip, by_pin, "enter_card")
    by_pin.send_dtmf(card.card)
    heard(tg, sip, by_pin, "enter_password")
    by_pin.send_dtmf("2468")
    heard(tg, sip, by_pin, "enter_destination")
    assert logged(tg, by_pin, f"AUTH: card {card.card} authenticated by pin")


def test_only_ani_asks_the_password_after_the_ani_and_refuses_the_pin(
        tg, sip, gateway, calls_end):
    ani, alias = fresh_ani()
    stranger, _ = fresh_ani()
    card = tenants.prepaid_card(tg, ani_alias=alias, service_password="2468", settings={
        **QUIET, **ANI_LOGIN, "check_service_password": "only_ani"})
    by_ani = from_the_pstn(tg, gateway, card.access_number, ani)
    heard(tg, sip, by_ani, "enter_password")
    assert not logged(tg, by_ani, "PROMPT: playing enter_card")
    by_ani.send_dtmf("2468")
    heard(tg, sip, by_ani, "enter_destination")
    assert logged(tg, by_ani, f"AUTH: card {card.card} authenticated by ani")
    by_ani.hangup_with()
    by_pin = from_the_pstn(tg, gateway, card.access_number, stranger)
    heard(tg, sip, by_pin, "enter_card")
    by_pin.send_dtmf(card.card)
    heard(tg, sip, by_pin, "invalid_card")
    assert logged(tg, by_pin, f"AUTH: account {card.card} has a service password: PIN refused")
    assert not logged(tg, by_pin, "PROMPT: playing enter_password")


def test_no_password_check_refuses_the_pin_of_a_passworded_card(tg, sip, gateway, calls_end):
    card = tenants.prepaid_card(tg, service_password="2468",
                                settings={**QUIET, "check_service_password": "none"})
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    heard(tg, sip, call, "enter_card")
    call.send_dtmf(card.card)
    heard(tg, sip, call, "invalid_card")
    heard(tg, sip, call, "enter_card", times=2)
    assert logged(tg, call, f"AUTH: account {card.card} has a service password: PIN refused")
    assert not logged(tg, call, "PROMPT: playing enter_password")
    assert not logged(tg, call, "PROMPT: playing enter_destination")


# --- 3. a card expiring during the session ------------------------------------------------

def test_a_card_expired_during_the_session_is_refused_at_the_next_dial(
        tg, sip, gateway, calls_end):
    card = tenants.prepaid_card(tg, settings=QUIET)
    call = at_destination_prompt(tg, sip, card)
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat(timespec="seconds")
    tg.cli("account", "update", card.card, "--expires", past)
    call.send_dtmf(TOLL + "#")
    heard(tg, sip, call, "card_expired")
    assert logged(tg, call, f"DIAL: card {card.card}: Account expired")
    sip.wait_for(lambda: call.disconnected, 15, "the IVR letting the caller go")
    assert gateway.incoming == []


# --- 4. the associated number dialed at once ------------------------------------------------

def test_the_associated_number_is_dialed_without_asking(tg, sip, gateway, records, calls_end):
    card = tenants.prepaid_card(tg, settings={**QUIET, "check_associated_number": True},
                                card_fields={"associated_number": SPEED_DIAL})
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    heard(tg, sip, call, "enter_card")
    call.send_dtmf(card.card)
    leg = gateway.wait_incoming(15)
    assert SPEED_DIAL in leg.header("To")
    assert not logged(tg, call, "PROMPT: playing enter_destination")
    sip.wait_for(lambda: leg.confirmed, 10, "the associated number answering")
    talking(sip, call, leg)
    leg.hangup_with()
    # after that call, the next number is dialed by hand
    heard(tg, sip, call, "enter_destination")
    call.hangup_with()
    assert xdrs(records, call.call_id, 2)["toll"][:2] == (card.card, SPEED_DIAL)


# --- 5. and 6. access codes ------------------------------------------------------------------

def test_the_first_call_is_rated_by_first_hash_access_number_the_next_plain(
        tg, sip, gateway, records, calls_end):
    card = tenants.prepaid_card(
        tg, balance="5.00", settings={**QUIET, "use_special_access_code_for_first_calls": True,
                                      "use_fixed_access_code_for_first_calls": False},
        rates={"": {"1": ("0.60", "1/1")}, "FIRST": {"1": ("0", "1/1")}})
    first_code = f"FIRST#{card.access_number}"
    rate_access_code(tg, card, first_code, "FIRST")
    call = at_destination_prompt(tg, sip, card)
    call.send_dtmf(TOLL + "#")
    first = gateway.wait_incoming(15)
    sip.wait_for(lambda: first.confirmed, 10, "the first call answered")
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
    rows = toll_codes(records, call)
    assert [code for code, _, _ in rows] == [first_code, ""]
    assert rows[0][2] == 0 and rows[1][2] > 0


def test_the_access_number_is_the_access_code_without_a_grouping_prefix(
        tg, sip, gateway, records, calls_end):
    card = tenants.prepaid_card(
        tg, balance="5.00", settings=QUIET,
        rates={"": {"1": ("0.60", "1/1")}, "DNIS": {"1": ("1.20", "1/1")}})
    rate_access_code(tg, card, card.access_number, "DNIS")
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    leg = card_to_destination(tg, sip, gateway, call, card.card)
    assert logged(tg, call, f"DIAL: {TOLL} under access code {card.access_number}")
    talking(sip, call, leg)
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the destination")
    account, cld, code, duration, amount = xdrs(records, call.call_id, 2)["toll"]
    assert (account, cld, code) == (card.card, TOLL, card.access_number)
    assert duration >= 1 and amount == Decimal("0.02") * duration  # 1.20/min, not 0.60


# --- 7. manual fallback after ANI + auth code ----------------------------------------------

def test_used_up_auth_code_attempts_fall_back_to_the_card_number(
        tg, sip, gateway, records, calls_end):
    company_id = tenants.next_associated_number()
    card = tenants.prepaid_card(tg, card_fields={"associated_number": company_id}, settings={
        **QUIET, **ANI_LOGIN, "use_ani_and_auth_code": True, "max_login_attempts": 2})
    main_line = company_line(tg, card, company_id)
    call = from_the_pstn(tg, gateway, card.access_number, main_line)
    heard(tg, sip, call, "enter_code")
    call.send_dtmf("0000")
    heard(tg, sip, call, "invalid_code")
    heard(tg, sip, call, "enter_code", times=2)
    call.send_dtmf("0000")
    heard(tg, sip, call, "enter_card")
    call.send_dtmf(card.card)
    heard(tg, sip, call, "enter_destination")
    assert logged(tg, call, f"AUTH: card {card.card} authenticated by pin")
    call.send_dtmf(TOLL + "#")
    leg = gateway.wait_incoming(15)
    sip.wait_for(lambda: leg.confirmed, 10, "the destination answering")
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the destination")
    assert xdrs(records, call.call_id, 2)["toll"][0] == card.card


# --- 8. warnings, music, dial attempts, the session's access code -------------------------

def test_a_voice_warning_tells_the_time_left_before_the_hard_cap(
        tg, sip, gateway, records, calls_end):
    # 0.10 at 0.60/min per second: 10 s; the time left said 5 s before the cap
    card = tenants.prepaid_card(tg, balance="0.10", settings={
        **QUIET, "disconnection_warning_interval": 5, "disconnection_warning_type": "voice"})
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    leg = card_to_destination(tg, sip, gateway, call, card.card)
    talking(sip, call, leg)
    heard(tg, sip, call, "call_ends_in", timeout=15)
    assert logged(tg, call, "WARNING: 5 s left: voice")
    heard(tg, sip, call, "seconds")  # "... five seconds"
    assert not leg.disconnected  # said before the cap
    sip.wait_for(lambda: leg.disconnected, 20, "the hard cap ending the call")
    call.hangup_with()
    toll = xdrs(records, call.call_id, 2)["toll"]
    assert 5 <= toll[3] <= 10


def test_pre_ring_music_plays_until_the_far_end_rings(tg, sip, gateway, calls_end):
    card = tenants.prepaid_card(tg, settings={**QUIET, "play_pre_ring_moh": True})
    call = at_destination_prompt(tg, sip, card)
    with silent_gateway(gateway):
        call.send_dtmf(TOLL + "#")
        leg = gateway.wait_incoming(15)
        heard(tg, sip, call, "music")
        assert not logged(tg, call, "PROMPT: playing ringback")
        leg.answer_with(180)
        heard(tg, sip, call, "ringback")
        lines = [ln for ln in ivr_log(tg).splitlines()
                 if f"[{call.call_id}] PROMPT: playing " in ln]
        order = [ln.split("playing ", 1)[1].split(" ", 1)[0] for ln in lines]
        assert order.index("please_wait") < order.index("music") < order.index("ringback")
        leg.answer_with(200)
        sip.wait_for(lambda: leg.confirmed, 10, "the destination answering")
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the destination")


SESSION_RATES = {"": {"1": ("0.60", "1/1")}, "ACCESS_CODE.ANSWER": {"1": ("0.60", "1/1")},
                 "ACCESS_CODE.ANSWER.FAIL": {"1": ("1.20", "1/1")}}


def test_failed_dial_attempts_run_out_and_the_session_is_charged_as_answer_fail(
        tg, sip, gateway, records, calls_end):
    card = tenants.prepaid_card(tg, rates=SESSION_RATES, settings={
        **QUIET, "max_dial_attempts": 2, "incoming_session_accounting": "all_session_time",
        "incoming_access_code_prefix": ""})
    gateway.answer, gateway.reason = 486, "Busy Here"
    call = at_destination_prompt(tg, sip, card)
    call.send_dtmf(TOLL + "#")
    heard(tg, sip, call, "busy")
    heard(tg, sip, call, "enter_destination", times=2)
    call.send_dtmf(TOLL + "#")
    heard(tg, sip, call, "busy", times=2)
    heard(tg, sip, call, "goodbye")
    sip.wait_for(lambda: call.disconnected, 15, "the IVR ending the session")
    assert len(gateway.incoming) == 2
    assert ivr_log(tg).count(f"[{call.call_id}] PROMPT: playing enter_destination ") == 2
    records.settled_xdrs(call.call_id, 3)
    assert [sip_code for _, sip_code, _ in toll_codes(records, call)] == [486, 486]
    [(account, code, seconds, amount)] = session_rows(records, call)
    assert (account, code) == (card.card, "ACCESS_CODE.ANSWER.FAIL")
    assert seconds >= 1 and amount == Decimal("0.02") * seconds  # the FAIL tariff


def test_a_connected_call_charges_the_session_as_answer_and_the_last_attempt_ends_it(
        tg, sip, gateway, records, calls_end):
    card = tenants.prepaid_card(tg, rates=SESSION_RATES, settings={
        **QUIET, "max_dial_attempts": 1, "incoming_session_accounting": "all_session_time",
        "incoming_access_code_prefix": ""})
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    leg = card_to_destination(tg, sip, gateway, call, card.card)
    talking(sip, call, leg)
    leg.hangup_with()
    heard(tg, sip, call, "goodbye")  # no attempt left: no second number asked
    sip.wait_for(lambda: call.disconnected, 15, "the IVR ending the session")
    records.settled_xdrs(call.call_id, 2)
    [(account, code, seconds, amount)] = session_rows(records, call)
    assert (account, code) == (card.card, "ACCESS_CODE.ANSWER")
    assert seconds >= 1 and amount == Decimal("0.01") * seconds  # the ANSWER tariff
    assert ivr_log(tg).count(f"[{call.call_id}] PROMPT: playing enter_destination ") == 1


# --- 9. a caller hanging up at each question ----------------------------------------------

@pytest.mark.parametrize("step", ["language", "auth_code", "password", "self_care"])
def test_a_caller_hanging_up_at_a_question_ends_the_session_once(
        tg, sip, gateway, records, calls_end, step):
    settings = dict(QUIET)
    fields: dict = {}
    company_id = tenants.next_associated_number()
    if step == "language":
        settings["languages"] = ["en", "es"]
    elif step == "auth_code":
        settings.update(ANI_LOGIN, use_ani_and_auth_code=True)
        fields["associated_number"] = company_id
    elif step == "password":
        settings["check_service_password"] = "always"
    else:
        settings["self_care_menu"] = True
    card = tenants.prepaid_card(tg, settings=settings, card_fields=fields,
                                service_password="2468" if step == "password" else "")
    wait_until(records.written_out, 20, "earlier xDRs written out")
    before_active = active_sessions(records)
    before_xdrs = metric_sum(records, "ivr_session_xdrs_total")
    if step == "auth_code":
        call = from_the_pstn(tg, gateway, card.access_number, company_line(tg, card, company_id))
        heard(tg, sip, call, "enter_code")
    else:
        call = dial(tg, phone(tg, sip, "caller", (card.phone, card.password)),
                    card.access_number)
        if step == "language":
            heard(tg, sip, call, "for_language")
        else:
            heard(tg, sip, call, "enter_card")
            call.send_dtmf(card.card)
            if step == "password":
                heard(tg, sip, call, "enter_password")
            else:
                heard(tg, sip, call, "enter_destination")
                call.send_dtmf("#")
                heard(tg, sip, call, "sc_another_card")
    wait_until(lambda: active_sessions(records) >= before_active + 1, 10,
               "the session counted as active")
    call.hangup_with()
    sip.wait_for(lambda: logged(tg, call, "HANGUP: caller hung up while asking"), 10,
                 "the IVR seeing the hangup")
    wait_until(lambda: active_sessions(records) <= before_active, 10,
               "the session gone from the active sessions")
    billed = 1 if step == "self_care" else 0  # before that, no card is authenticated
    rows = session_rows(records, call)
    assert len(rows) == billed, rows
    if billed:
        assert rows[0][:2] == (card.card, "")
    assert ivr_log(tg).count(f"[{call.call_id}] XDR: session of ") == billed
    assert metric_sum(records, "ivr_session_xdrs_total") == before_xdrs + billed
