"""Balance information and account top-up via voucher (voice-application-settings.txt):
each behind an access number of its own, on the prepaid card's login (the ANI through its
translation rule, else the card number), then one service and goodbye.

Real Kamailio, rtpengine, IVR, Redis, PostgreSQL and the xDR writer; the caller is the
gateway phone (a PSTN caller) or a phone of the platform.
"""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tests import tenants
from tests.calls import from_the_pstn, heard, ivr_log, logged, phone

pytestmark = pytest.mark.e2e

BY_ANI = {"ani_translation_rule": "s/^0/ani44/"}


def caller_number() -> str:
    """A caller number of this test alone (its card's alias is ani44 + it without the 0)."""
    return f"02{uuid.uuid4().int % 10**8:08d}"


def card_alias(ani: str) -> str:
    return "ani44" + ani[1:]


def said_goodbye_and_hung_up(tg, sip, call) -> None:
    heard(tg, sip, call, "goodbye")
    sip.wait_for(lambda: call.disconnected, 15, "the IVR hanging up")


def test_balance_information_by_ani_says_the_balance_and_goodbye(
        tg, sip, gateway, records, calls_end):
    ani = caller_number()
    card = tenants.prepaid_card(tg, app_type="balance_info", balance="5.00", settings=BY_ANI,
                                ani_alias=card_alias(ani))
    call = from_the_pstn(tg, gateway, card.access_number, ani)
    heard(tg, sip, call, "your_balance_is")
    assert logged(tg, call, f"AUTH: card {card.card} authenticated by ani")
    assert not logged(tg, call, "PROMPT: playing enter_card")
    said_goodbye_and_hung_up(tg, sip, call)
    assert records.balance(card.card) == Decimal("5.00")  # the session costs nothing


def test_balance_information_of_a_credit_account_says_its_balance_and_credit_limit(
        tg, sip, gateway, calls_end):
    ani = caller_number()
    card = tenants.prepaid_card(
        tg, app_type="balance_info", ani_alias=card_alias(ani),
        settings={**BY_ANI, "credit_balance_announcement": "balance",
                  "announce_credit_limit": True},
        card_fields={"billing_model": "credit", "credit_limit": "20.00", "balance": "0"})
    call = from_the_pstn(tg, gateway, card.access_number, ani)
    heard(tg, sip, call, "your_balance_is")
    heard(tg, sip, call, "credit_limit_is")
    assert not logged(tg, call, "PROMPT: playing available_funds_are")
    said_goodbye_and_hung_up(tg, sip, call)


def test_balance_information_for_a_phone_of_the_platform_uses_its_own_account(
        tg, sip, gateway, calls_end):
    card = tenants.prepaid_card(tg, app_type="balance_info",
                                settings={"use_sip_account_info": True})
    desk = phone(tg, sip, "desk", (card.phone, card.password))
    call = desk.call(f"sip:{card.access_number}@{tg.sip_target}")
    heard(tg, sip, call, "your_balance_is")
    assert logged(tg, call, f"AUTH: account {card.phone} as Kamailio authenticated")
    said_goodbye_and_hung_up(tg, sip, call)


def test_a_voucher_tops_up_the_account_at_its_access_number(tg, sip, gateway, records,
                                                            calls_end):
    ani = caller_number()
    card = tenants.prepaid_card(tg, app_type="voucher_topup", balance="1.00",
                                settings=BY_ANI, ani_alias=card_alias(ani))
    voucher = tenants.new_voucher(tg, "2.50")
    call = from_the_pstn(tg, gateway, card.access_number, ani)
    heard(tg, sip, call, "enter_voucher")
    call.send_dtmf(voucher)
    heard(tg, sip, call, "voucher_accepted")
    heard(tg, sip, call, "your_balance_is")
    said_goodbye_and_hung_up(tg, sip, call)
    assert records.balance(card.card) == Decimal("3.50")
    assert voucher not in ivr_log(tg)
    # the same voucher a second time: refused, nothing more credited
    again = from_the_pstn(tg, gateway, card.access_number, ani)
    heard(tg, sip, again, "enter_voucher")
    again.send_dtmf(voucher)
    heard(tg, sip, again, "invalid_voucher")
    again.hangup_with()
    assert records.balance(card.card) == Decimal("3.50")


def test_a_caller_the_ani_does_not_name_logs_in_with_the_card_number_first(
        tg, sip, gateway, records, calls_end):
    card = tenants.prepaid_card(tg, app_type="voucher_topup", balance="1.00")
    voucher = tenants.new_voucher(tg, "1.25")
    call = from_the_pstn(tg, gateway, card.access_number, "14165550999")
    heard(tg, sip, call, "enter_card")
    call.send_dtmf(card.card + "#")
    heard(tg, sip, call, "enter_voucher")
    call.send_dtmf(voucher)
    heard(tg, sip, call, "voucher_accepted")
    said_goodbye_and_hung_up(tg, sip, call)
    assert records.balance(card.card) == Decimal("2.25")


def test_a_balance_transfer_empties_an_unused_card_into_the_callers_once(
        tg, sip, gateway, records, calls_end):
    ani = caller_number()
    card = tenants.prepaid_card(tg, app_type="balance_transfer", balance="5.00",
                                settings={**BY_ANI, "min_card_length": 4,
                                          "max_card_length": 20, "confirm_by_pound": True},
                                ani_alias=card_alias(ani))
    donor = card.phone  # a debit card of the same product, never used for calls
    tg.cli("balance", "adjust", donor, "3.00")
    call = from_the_pstn(tg, gateway, card.access_number, ani)
    heard(tg, sip, call, "enter_donor_card")
    call.send_dtmf(donor + "#")
    heard(tg, sip, call, "balance_transferred")
    said_goodbye_and_hung_up(tg, sip, call)
    assert (records.balance(card.card), records.balance(donor)) == (Decimal("8.00"), 0)
    # emptied, it has nothing more to give: refused, nothing moves
    again = from_the_pstn(tg, gateway, card.access_number, ani)
    heard(tg, sip, again, "enter_donor_card")
    again.send_dtmf(donor + "#")
    heard(tg, sip, again, "transfer_refused")
    again.hangup_with()
    assert records.balance(card.card) == Decimal("8.00")
