"""Callback calling (voice-application-settings.txt): the caller rings the callback access
number and is declined; the IVR calls them back (leg A, through Kamailio and the gateway,
billed under LEG_A.<access number>), asks for the destination and places leg B (under
LEG_B.<access number>); both legs are billed to the card under the request's session.

Real Kamailio, rtpengine, IVR, Redis, PostgreSQL and the xDR writer; the gateway phone is
the PSTN: it places the request, answers leg A as the caller's phone, and leg B as the
destination.
"""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tests import tenants
from tests.calls import TOLL, from_the_pstn, ivr_log, talking

pytestmark = pytest.mark.e2e

LEG_RATES = {"LEG_A.{access}": {"1": ("0.60", "1/1")}, "LEG_B.{access}": {"1": ("1.20", "1/1")},
             "CALLBACK_FAIL": {"1": ("0", "1/1")}, "": {"1": ("0.60", "1/1")}}


def caller_number() -> str:
    """A caller of this test alone: 0 + 9 digits (called back as 1 + 9 digits)."""
    return f"02{uuid.uuid4().int % 10**8:08d}"


def callback_card(tg, ani: str, rates=LEG_RATES, **settings):
    return tenants.prepaid_card(
        tg, app_type="callback", balance="5.00", ani_alias="cb44" + ani[1:], rates=rates,
        settings={"authenticate_by": "ani", "ani_translation_rule": "s/^0/cb44/",
                  "destination_translation_rule": "s/^0/1/", "wait_time": 1,
                  "leg_a_cld_prefix": "LEG_A", "leg_b_cld_prefix": "LEG_B",
                  "play_welcome_message": False, **settings})


def request_callback(tg, sip, gateway, card, ani: str):
    """Ring the access number: declined at once (nothing billed for it)."""
    request = from_the_pstn(tg, gateway, card.access_number, ani)
    sip.wait_for(lambda: request.disconnected, 10, "the request declined")
    assert request.last_code == 603
    return request


def heard_on_leg_a(tg, sip, request, leg_a, prompt: str) -> None:
    """Until the IVR plays `prompt` on leg A (logged under the request's Call-ID) and half
    a second of it reached the phone: what a person waits for before pressing keys."""
    line = f"[{request.call_id}] PROMPT: playing {prompt} "
    sip.wait_for(lambda: line in ivr_log(tg), 20, f"{prompt} on leg A")
    start = leg_a.rx_packets()
    sip.wait_for(lambda: leg_a.rx_packets() >= start + 25, 20, f"{prompt} reaching leg A")


def dial_from_leg_a(tg, sip, gateway, request, leg_a):
    """Answer the call-back, wait for the destination prompt, dial TOLL: leg B."""
    leg_a.answer_with(200)
    heard_on_leg_a(tg, sip, request, leg_a, "enter_destination")
    gateway.answer = 200
    leg_a.send_dtmf(TOLL + "#")
    return gateway.wait_incoming(15, count=2)


def test_callback_by_ani_calls_back_then_bridges_leg_b_each_leg_billed_under_its_code(
        tg, sip, gateway, records, calls_end):
    ani = caller_number()
    card = callback_card(tg, ani)
    gateway.answer = None
    request = request_callback(tg, sip, gateway, card, ani)
    leg_a = gateway.wait_incoming(15)  # the call-back, to the caller's number in E.164
    called_back = "1" + ani[1:]
    assert f"sip:{called_back}@" in leg_a.request.split("\n", 1)[0]
    assert card.access_number in leg_a.header("From")  # the caller sees the access number
    leg_b = dial_from_leg_a(tg, sip, gateway, request, leg_a)
    assert TOLL in leg_b.request.split("\n", 1)[0]
    sip.wait_for(lambda: leg_b.confirmed, 10, "leg B answered")
    talking(sip, leg_a, leg_b)
    leg_b.hangup_with()  # the destination hangs up: the caller may dial again
    prompt = f"[{request.call_id}] PROMPT: playing enter_destination"
    sip.wait_for(lambda: ivr_log(tg).count(prompt) >= 2, 15, "the destination prompt again")
    leg_a.hangup_with()
    records.settled_xdrs(request.call_id, 2)
    rows = records.query("SELECT cld, access_code, account_id, amount FROM xdrs"
                         " WHERE session_id = %s ORDER BY access_code", request.call_id)
    assert [(cld, code, account) for cld, code, account, _ in rows] == [
        (called_back, f"LEG_A.{card.access_number}", card.card),
        (TOLL, f"LEG_B.{card.access_number}", card.card)]
    leg_a_cost, leg_b_cost = rows[0][3], rows[1][3]
    assert leg_a_cost > 0 and leg_b_cost > 0
    assert records.balance(card.card) == Decimal("5.00") - leg_a_cost - leg_b_cost


def test_an_unknown_caller_is_never_called_back(tg, sip, gateway, records, calls_end):
    card = callback_card(tg, caller_number())
    stranger = caller_number()
    request = request_callback(tg, sip, gateway, card, stranger)
    sip.wait_for(lambda: f"[{request.call_id}] CALLBACK: not calling {stranger} back: "
                         "unknown caller" in ivr_log(tg), 10, "the refusal logged")
    assert len(gateway.incoming) == 0


def test_a_number_asking_again_and_again_is_called_back_only_so_often(
        tg, sip, gateway, calls_end):
    ani = caller_number()
    card = callback_card(tg, ani, wait_time=600)  # none placed while the test runs
    requests = [request_callback(tg, sip, gateway, card, ani) for _ in range(4)]
    last = requests[-1].call_id
    sip.wait_for(lambda: f"[{last}] CALLBACK: not calling {ani} back: too many requests"
                 in ivr_log(tg), 10, "the fourth request refused")
    assert all(f"[{r.call_id}] CALLBACK: calling" in ivr_log(tg) for r in requests[:3])


@pytest.mark.parametrize("special_charge", [True, False])
def test_a_failed_leg_b_rates_leg_a_under_callback_fail_only_when_asked(
        tg, sip, gateway, records, calls_end, special_charge):
    ani = caller_number()
    card = callback_card(tg, ani, special_charge_if_leg_b_fails=special_charge)
    gateway.answer = None
    request = request_callback(tg, sip, gateway, card, ani)
    leg_a = gateway.wait_incoming(15)
    leg_a.answer_with(200)
    heard_on_leg_a(tg, sip, request, leg_a, "enter_destination")
    gateway.answer, gateway.reason = 486, "Busy Here"  # the destination is busy
    leg_a.send_dtmf(TOLL + "#")
    sip.wait_for(lambda: f"[{request.call_id}] PROMPT: playing busy" in ivr_log(tg), 15,
                 "the busy destination explained")
    if special_charge:
        sip.wait_for(lambda: f"[{request.call_id}] RERATE: accepted by Kamailio" in
                     ivr_log(tg), 10, "leg A re-rated")
    leg_a.hangup_with()
    records.settled_xdrs(request.call_id, 2)
    rows = records.query("SELECT leg, access_code, amount FROM xdrs WHERE session_id = %s"
                         " AND cld = %s", request.call_id, "1" + ani[1:])
    expected = "CALLBACK_FAIL" if special_charge else f"LEG_A.{card.access_number}"
    assert [(code, amount) for _, code, amount in rows] == [
        (expected, 0 if special_charge else rows[0][2])]
    assert special_charge or rows[0][2] > 0


def test_a_dearer_callback_fail_rate_cuts_leg_a_to_what_the_funds_cover(
        tg, sip, gateway, records, calls_end):
    # leg A holds half the card's 5.00 at LEG_A's 0.60/min: 250 s. Under CALLBACK_FAIL at
    # 12.00/min (0.20 a second) the whole 5.00 covers 25 s from the answer: re-rated, leg A
    # must end there, billed no more than the card holds
    ani = caller_number()
    card = callback_card(tg, ani, rates={**LEG_RATES, "CALLBACK_FAIL": {"1": ("12.00", "1/1")}},
                         special_charge_if_leg_b_fails=True)
    gateway.answer = None
    request = request_callback(tg, sip, gateway, card, ani)
    leg_a = gateway.wait_incoming(15)
    leg_a.answer_with(200)
    heard_on_leg_a(tg, sip, request, leg_a, "enter_destination")
    gateway.answer, gateway.reason = 486, "Busy Here"
    leg_a.send_dtmf(TOLL + "#")
    sip.wait_for(lambda: f"[{request.call_id}] RERATE: accepted by Kamailio" in
                 ivr_log(tg), 20, "leg A re-rated")
    sip.wait_for(lambda: leg_a.disconnected, 60,
                 "leg A cut off where the funds end under CALLBACK_FAIL (25 s)")
    # both sides hung up: the IVR's side of leg A too (it answers a BYE at once, which
    # made Kamailio 5.6.3 skip the other side's BYE)
    sip.wait_for(lambda: f"[{request.call_id}] HANGUP: caller hung up" in ivr_log(tg), 10,
                 "the IVR's side of leg A hung up")
    records.settled_xdrs(request.call_id, 2)
    code, duration, amount = records.query(
        "SELECT access_code, duration, amount FROM xdrs WHERE session_id = %s AND cld = %s",
        request.call_id, "1" + ani[1:])[0]
    assert (code, duration <= 25, amount <= Decimal("5.00")) == ("CALLBACK_FAIL", True, True), \
        f"leg A billed {amount} for {duration} s under {code}"
    assert records.balance(card.card) >= 0


def test_a_callback_fail_rate_the_funds_cannot_cover_leaves_leg_a_on_its_own_rate(
        tg, sip, gateway, records, calls_end):
    # CALLBACK_FAIL at 300.00/min (5.00 a second): the card's 5.00 cannot pay for the
    # seconds leg A has already talked. Kamailio refuses the re-rating (409), the IVR
    # says so, and leg A is billed under the rate it was authorized with
    ani = caller_number()
    card = callback_card(tg, ani, rates={**LEG_RATES, "CALLBACK_FAIL": {"1": ("300.00", "1/1")}},
                         special_charge_if_leg_b_fails=True)
    gateway.answer = None
    request = request_callback(tg, sip, gateway, card, ani)
    leg_a = gateway.wait_incoming(15)
    leg_a.answer_with(200)
    heard_on_leg_a(tg, sip, request, leg_a, "enter_destination")
    gateway.answer, gateway.reason = 486, "Busy Here"
    leg_a.send_dtmf(TOLL + "#")
    refused = (f"[{request.call_id}] RERATE: refused by Kamailio: 409 Funds do not cover the"
               " new rate")
    sip.wait_for(lambda: refused in ivr_log(tg), 20, "the refused re-rating in the IVR's log")
    leg_a.hangup_with()
    records.settled_xdrs(request.call_id, 2)
    code, amount = records.query(
        "SELECT access_code, amount FROM xdrs WHERE session_id = %s AND cld = %s",
        request.call_id, "1" + ani[1:])[0]
    assert code == f"LEG_A.{card.access_number}" and amount > 0, (code, amount)


def test_callback_by_dnis_calls_the_access_numbers_account_back_on_its_associated_number(
        tg, sip, gateway, records, calls_end):
    card = callback_card(tg, caller_number(), authenticate_by="dnis")
    home = "1" + caller_number()[1:]
    # the account named by the access number, called back on its associated number
    tg.cli("account", "create", card.access_number, "--customer", card.customer,
           "--product", card.customer, "--billing-model", "debit", "--balance", "5.00",
           "--associated-number", home)
    gateway.answer = None
    request = request_callback(tg, sip, gateway, card, "14165550999")
    leg_a = gateway.wait_incoming(15)
    assert f"sip:{home}@" in leg_a.request.split("\n", 1)[0]
    leg_b = dial_from_leg_a(tg, sip, gateway, request, leg_a)
    sip.wait_for(lambda: leg_b.confirmed, 10, "leg B answered")
    talking(sip, leg_a, leg_b)
    leg_a.hangup_with()  # the caller hangs up: both legs end
    sip.wait_for(lambda: leg_b.disconnected, 10, "leg B's BYE")
    records.settled_xdrs(request.call_id, 2)
    rows = records.query("SELECT cld, access_code, account_id FROM xdrs WHERE session_id = %s"
                         " ORDER BY access_code", request.call_id)
    assert rows == [(home, f"LEG_A.{card.access_number}", card.access_number),
                    (TOLL, f"LEG_B.{card.access_number}", card.access_number)]


def test_auto_registration_with_a_template_gives_a_stranger_an_empty_card_to_top_up(
        tg, sip, gateway, records, calls_end):
    card = callback_card(tg, caller_number(), auto_registration=True,
                         send_authorization=True)
    template = card.access_number[:-3] + "777"  # even a credit template gives no credit
    tg.cli("account", "create", template, "--customer", card.customer, "--product",
           card.customer, "--billing-model", "credit", "--credit-limit", "20.00")
    tg.cli("app", "update", card.app, "--set", f"template_account={template}")
    stranger = caller_number()
    new = "cb44" + stranger[1:]
    first = request_callback(tg, sip, gateway, card, stranger)
    sip.wait_for(lambda: f"[{first.call_id}] CALLBACK: not calling {stranger} back: "
                         "insufficient funds" in ivr_log(tg), 10, "no call-back on credit")
    assert records.query("SELECT billing_model, balance, customer_id = (SELECT customer_id"
                         " FROM accounts WHERE id = %s) FROM accounts WHERE id = %s",
                         template, new) == [("debit", Decimal("0"), True)]
    assert gateway.incoming == []
    tg.cli("balance", "adjust", new, "5.00")  # the new card topped up: now it is called back
    gateway.answer = None
    request = request_callback(tg, sip, gateway, card, stranger)
    leg_a = gateway.wait_incoming(15)
    leg_b = dial_from_leg_a(tg, sip, gateway, request, leg_a)
    sip.wait_for(lambda: leg_b.confirmed, 10, "leg B answered")
    leg_a.hangup_with()
    records.settled_xdrs(request.call_id, 2)
    assert records.query("SELECT DISTINCT account_id FROM xdrs WHERE session_id = %s",
                         request.call_id) == [(new,)]


def test_strict_authorization_drops_leg_a_when_the_card_cannot_pay_leg_b(
        tg, sip, gateway, records, calls_end):
    ani = caller_number()
    card = callback_card(tg, ani, authenticate_by="none", strict_authorization=True)
    internal = card.access_number[:-3] + "888"  # pays leg A until the card is known
    tg.cli("account", "create", internal, "--customer", card.customer, "--product",
           card.customer, "--billing-model", "debit", "--balance", "5.00")
    tg.cli("app", "update", card.app, "--set", f"internal_account={internal}")
    tg.cli("balance", "adjust", card.card, "-5.00")  # the card has nothing left
    gateway.answer = None
    request = request_callback(tg, sip, gateway, card, ani)
    leg_a = gateway.wait_incoming(15)
    leg_a.answer_with(200)
    said = f"[{request.call_id}] PROMPT: playing "
    heard_on_leg_a(tg, sip, request, leg_a, "enter_card")
    leg_a.send_dtmf(card.card)
    sip.wait_for(lambda: said + "insufficient_funds" in ivr_log(tg), 15, "why")
    sip.wait_for(lambda: leg_a.disconnected, 20, "leg A dropped by the IVR")
    assert len(gateway.incoming) == 1  # no leg B
    [(leg, payer, *_)] = records.settled_xdrs(request.call_id, 1)
    assert (leg, payer) == ("toll", internal)  # leg A, on the internal account
