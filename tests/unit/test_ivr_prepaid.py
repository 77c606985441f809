"""The prepaid card application, event by event, against in-memory services: every option
of voice-application-settings.txt's first section that changes what the caller hears or
what is billed."""
from __future__ import annotations

from decimal import Decimal

import pytest

import hotpath
from billing.prepaid import (
    VOUCHER_INVALID,
    VOUCHER_UNAVAILABLE,
    OutgoingCall,
    password_step,
    session_charge,
)
from ivr.actions import Bridge, Hangup, Originate, Play, SessionXdr, SetTimer, StopPlay
from ivr.apps.prepaid import BRIDGED, DONE, WARN_TIMER, Caller, Prepaid
from provisioning.app_settings import defaults
from tollgate.directory import Identity

pytestmark = pytest.mark.unit

CARD = {"id": "70000000001", "customer_id": 1, "product_id": 1, "billing_model": "debit",
        "service_password": "", "associated_number": "", "language": None}
PASSWORDED = {**CARD, "id": "70000000002", "service_password": "1357"}
COMPANY = {**CARD, "id": "ani4420000001", "associated_number": "534564"}
EMPLOYEE = {**CARD, "id": "70000000555"}
PRODUCT = {"id": 1, "rating": [{"access_code": "", "tariff_id": 1},
                               {"access_code": "LOCAL", "tariff_id": 2},
                               {"access_code": "FIRSTCALL", "tariff_id": 3},
                               {"access_code": "ANNOUNCE+16045550100", "tariff_id": 4},
                               {"access_code": "FIRST#16045550100", "tariff_id": 3}]}
RATES = {1: {"1": {"prefix": "1", "price_first": "0.60", "price_next": "0.60",
                   "interval_first": 60, "interval_next": 60}},
         2: {"1": {"prefix": "1", "price_first": "0.30", "price_next": "0.30",
                   "interval_first": 1, "interval_next": 1}},
         3: {"1": {"prefix": "1", "price_first": "0", "price_next": "0"}},
         4: {"1": {"prefix": "1", "price_first": "1.20", "price_next": "1.20",
                   "interval_first": 1, "interval_next": 1}}}
ACCESS = "16045550100"
DEST = "12125550123"


class FakeServices:
    def __init__(self, balance: str = "10.00", first_call: bool = False):
        self.accounts = {a["id"]: dict(a) for a in (CARD, PASSWORDED, COMPANY, EMPLOYEE)}
        self.aliases: dict[str, str] = {"534564#555": EMPLOYEE["id"]}
        self.balance = Decimal(balance)
        self.first = first_call
        self.registered: list[tuple[str, str]] = []
        self.deregistered: list[str] = []
        self.called: list[str] = []
        self.fails: dict[str, int] = {}
        self.products = {1: PRODUCT}
        self.free_slots: int | None = None     # None: the client has no max calls
        self.slots: list[tuple[object, str]] = []
        self.given_back: list[tuple[object, str]] = []
        self.vouchers: dict[str, Decimal] = {}   # unused voucher number -> amount
        self.redeemed: list[tuple[str, str]] = []
        self.database_down = False

    def identity(self, some_id):
        if some_id in self.accounts:
            return Identity(self.accounts[some_id], True)
        if some_id in self.aliases:
            return Identity(self.accounts[self.aliases[some_id]], False, via_alias=some_id)
        return None

    def account(self, account_id):
        return self.accounts.get(account_id)

    def customer(self, customer_id):
        return {"id": customer_id, "currency": "USD", "blocked": False}

    def product(self, product_id):
        return self.products.get(product_id)

    def rate(self, tariff_id, number):
        table = RATES.get(tariff_id, {})
        for end in range(len(number), -1, -1):
            if number[:end] in table:
                return table[number[:end]]
        return None

    def funds(self, account):
        return self.balance, self.balance

    def first_call(self, account):
        return self.first

    def mark_called(self, account):
        self.called.append(account["id"])

    def register_ani(self, alias, account_id):
        self.registered.append((alias, account_id))
        self.aliases[alias] = account_id
        return True

    def deregister_ani(self, alias, account_id):
        self.deregistered.append(alias)
        return self.aliases.pop(alias, None) == account_id

    def failures(self, key):
        return self.fails.get(key, 0)

    def record_failure(self, key, ttl):
        self.fails[key] = self.fails.get(key, 0) + 1
        return self.fails[key]

    def translate(self, rule, number):
        return hotpath.TranslationRule(rule).apply(number) if rule else number

    def take_slot(self, customer, call_id):
        if self.free_slots is not None and len(self.slots) >= self.free_slots:
            return False
        self.slots.append((customer["id"], call_id))
        return True

    def give_back_slot(self, customer_id, call_id):
        self.given_back.append((customer_id, call_id))
        self.slots.remove((customer_id, call_id))

    def redeem_voucher(self, code, account_id):
        if self.database_down:
            return VOUCHER_UNAVAILABLE
        if code not in self.vouchers:
            return VOUCHER_INVALID
        self.redeemed.append((code, account_id))
        amount = self.vouchers.pop(code)
        self.balance += amount
        return amount


class Clock:
    def __init__(self):
        self.t = 1_800_000_000.0

    def __call__(self):
        return self.t


def card_app(services=None, ani: str = "0212345678", clock=None, account=None,
             longest: int = 14400, **settings) -> Prepaid:
    app = {"id": 7, "type": "prepaid", "settings": {**defaults("prepaid"), **settings}}
    caller = Caller(call_id="c1", session="c1", access_number=ACCESS, ani=ani, app=app,
                    account=account, longest=longest)
    return Prepaid(caller, services or FakeServices(), now=clock or Clock())


def played(actions) -> list[str]:
    return [name for a in actions if isinstance(a, Play) for name in a.prompts]


def keys(app: Prepaid, digits: str) -> list:
    actions: list = []
    for digit in digits:
        actions += app.on_digit(digit)
    return actions


def asked(app: Prepaid, actions) -> list:
    """The prompt ends; the actions then (a queued question, or its timer)."""
    return actions + app.on_prompt_done()


def to_destination_prompt(app: Prepaid, card: str = CARD["id"]) -> list:
    actions = app.start()
    actions += app.on_prompt_done()  # welcome ended: the card question
    assert "enter_card" in played(actions)
    return keys(app, card)


def test_pin_authentication_then_the_destination_is_dialed_under_the_plain_code():
    app = card_app()
    actions = to_destination_prompt(app)
    assert "enter_destination" in played(actions)
    actions = keys(app, DEST + "#")
    assert Originate(CARD["id"], dest=DEST, access_code="", cli="0212345678") in actions
    assert "please_wait" in played(actions)


def test_a_call_in_from_the_pstn_holds_a_call_slot_of_the_cards_client_until_it_ends():
    services = FakeServices()
    app = card_app(services)
    assert "enter_destination" in played(to_destination_prompt(app))
    assert services.slots == [(1, "c1")]
    app.release_slot()
    app.release_slot()  # the server may close twice: given back once
    assert services.given_back == [(1, "c1")] and services.slots == []


def test_a_pstn_caller_is_let_go_when_the_client_has_its_max_calls():
    services = FakeServices()
    services.free_slots = 0
    app = card_app(services)
    actions = to_destination_prompt(app)
    assert played(actions)[-2:] == ["max_calls_reached", "goodbye"]
    assert app.card is None and app.state == "farewell"
    app.release_slot()
    assert services.given_back == []


def test_a_phone_of_the_platform_takes_no_incoming_slot():
    services = FakeServices()
    services.free_slots = 0
    app = card_app(services, account={"id": "17785551209", "customer_id": 2})
    assert "enter_destination" in played(to_destination_prompt(app))
    assert services.slots == []


def test_welcome_message_is_optional():
    app = card_app(play_welcome_message=False)
    assert played(app.start()) == ["enter_card"]


def test_a_wrong_card_is_explained_and_max_login_attempts_ends_the_call():
    app = card_app(play_welcome_message=False, max_login_attempts=2)
    app.start()
    first = keys(app, "99999999999")
    assert played(first) == ["invalid_card", "enter_card"]
    second = keys(app, "99999999998")
    assert played(second) == ["goodbye"]
    assert Hangup("caller") in app.on_prompt_done()


def test_silence_at_the_card_prompt_is_an_attempt_too():
    app = card_app(play_welcome_message=False, max_login_attempts=2)
    app.start()
    assert app.on_prompt_done() == [SetTimer(3.0)]
    assert played(app.on_timeout()) == ["enter_card"]
    app.on_prompt_done()
    assert played(app.on_timeout()) == ["goodbye"]


def test_card_length_bounds_come_from_the_settings():
    app = card_app(play_welcome_message=False, min_card_length=4, max_card_length=11)
    app.start()
    app.on_prompt_done()
    assert played(keys(app, "123")) == []  # waiting for more digits
    assert played(app.on_timeout()) == ["enter_card"]  # 3 digits < 4: an attempt


def test_ani_authentication_with_the_translation_rule_skips_the_pin():
    services = FakeServices()
    services.accounts["ani44212345678"] = {**CARD, "id": "ani44212345678"}
    app = card_app(services, ani_authentication=True, ani_translation_rule="s/^0/ani44/",
                   play_welcome_message=False)
    assert played(app.start()) == ["enter_destination"]
    assert app.card["id"] == "ani44212345678"


def test_unknown_ani_falls_back_to_the_pin_unless_manual_authentication_is_off():
    assert played(card_app(ani_authentication=True, play_welcome_message=False).start()) == [
        "enter_card"]
    assert played(card_app(ani_authentication=True, manual_authentication=False,
                           play_welcome_message=False).start()) == ["not_authorized", "goodbye"]


def test_ani_and_auth_code_bills_associated_number_hash_code():
    services = FakeServices()
    app = card_app(services, ani="020000001", ani_authentication=True,
                   use_ani_and_auth_code=True, ani_translation_rule="s/^0/ani44/",
                   min_auth_code_length=3, max_auth_code_length=3, play_welcome_message=False)
    assert played(app.start()) == ["enter_code"]
    assert "enter_destination" in played(keys(app, "555"))
    assert app.card["id"] == EMPLOYEE["id"]


def test_auth_codes_used_up_fall_back_to_the_card_number_under_manual_authentication():
    services = FakeServices()
    app = card_app(services, ani="020000001", ani_authentication=True,
                   use_ani_and_auth_code=True, ani_translation_rule="s/^0/ani44/",
                   min_auth_code_length=3, max_auth_code_length=3, max_login_attempts=2,
                   play_welcome_message=False)
    assert played(app.start()) == ["enter_code"]
    assert played(keys(app, "111")) == ["invalid_code", "enter_code"]
    assert played(keys(app, "222")) == ["enter_card"]
    assert "enter_destination" in played(keys(app, CARD["id"]))
    app = card_app(FakeServices(), ani="020000001", ani_authentication=True,
                   use_ani_and_auth_code=True, ani_translation_rule="s/^0/ani44/",
                   min_auth_code_length=3, max_auth_code_length=3, max_login_attempts=1,
                   manual_authentication=False, play_welcome_message=False)
    app.start()
    assert played(keys(app, "111")) == ["not_authorized", "goodbye"]


@pytest.mark.parametrize("mode, by, has_password, step", [
    ("none", "ani", True, "skip"), ("none", "pin", True, "refuse"), ("none", "pin", False, "skip"),
    ("always", "ani", False, "ask"), ("always", "pin", True, "ask"),
    ("always", "pin", False, "skip"),
    ("only_pin", "ani", True, "skip"), ("only_pin", "pin", True, "ask"),
    ("only_ani", "ani", False, "ask"), ("only_ani", "pin", True, "refuse"),
    ("only_ani", "pin", False, "skip"),
])
def test_check_service_password_modes(mode, by, has_password, step):
    assert password_step(mode, by, has_password) == step


def test_service_password_is_asked_and_checked():
    app = card_app(check_service_password="always", play_welcome_message=False)
    app.start()
    assert played(keys(app, PASSWORDED["id"])) == ["enter_password"]
    assert played(keys(app, "2468")) == ["invalid_password", "enter_password"]
    assert "enter_destination" in played(keys(app, "1357"))


def test_a_pin_of_a_passworded_card_is_refused_in_mode_none():
    app = card_app(play_welcome_message=False)
    app.start()
    assert played(keys(app, PASSWORDED["id"])) == ["invalid_card", "enter_card"]


def test_pin_translation_rule_applies_when_the_password_is_checked():
    services = FakeServices()
    services.accounts["ani447000000002"] = {**PASSWORDED, "id": "ani447000000002"}
    app = card_app(services, check_service_password="only_pin",
                   pin_translation_rule="s/^0/ani44/", min_card_length=11, max_card_length=11,
                   play_welcome_message=False)
    app.start()
    assert played(keys(app, "07000000000")) == ["invalid_card", "enter_card"]
    assert played(keys(app, "07000000002")) == ["enter_password"]  # ani447000000002


def test_auto_registration_asks_then_registers_the_translated_ani():
    services = FakeServices()
    app = card_app(services, ani_authentication=True, auto_registration=True,
                   ani_translation_rule="s/^0/ani44/", play_welcome_message=False)
    app.start()
    assert played(keys(app, CARD["id"])) == ["register_ani"]
    actions = keys(app, "1")
    assert services.registered == [("ani44212345678", CARD["id"])]
    assert played(actions)[:1] == ["ani_registered"] or "ani_registered" in played(
        asked(app, actions))


def test_auto_registration_without_confirmation_and_skip():
    services = FakeServices()
    app = card_app(services, ani_authentication=True, auto_registration=True,
                   register_without_confirmation=True, play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    assert services.registered == [("0212345678", CARD["id"])]
    services = FakeServices()
    app = card_app(services, ani_authentication=True, auto_registration=True,
                   play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    assert "enter_destination" in played(keys(app, "2")) and services.registered == []


def test_low_balance_disconnect_and_no_outgoing_calls():
    app = card_app(FakeServices(balance="0.00"), restrict_low_balance="disconnect",
                   play_welcome_message=False)
    app.start()
    assert played(keys(app, CARD["id"])) == ["insufficient_funds", "goodbye"]
    app = card_app(FakeServices(balance="0.00"), restrict_low_balance="no_outgoing_calls",
                   play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    assert played(keys(app, DEST + "#")) == ["busy_tone"]
    assert Hangup("caller") in app.on_prompt_done()


def test_low_balance_is_below_the_products_rounding_amount():
    """0.40 left is a low balance on a product rounding to 0.50, not on the default 0.01."""
    services = FakeServices(balance="0.40")
    services.products[1] = {**PRODUCT, "rounding_amount": "0.50"}
    app = card_app(services, restrict_low_balance="disconnect", play_welcome_message=False)
    app.start()
    assert played(keys(app, CARD["id"])) == ["insufficient_funds", "goodbye"]
    app = card_app(FakeServices(balance="0.40"), restrict_low_balance="disconnect",
                   play_welcome_message=False)
    app.start()
    assert "enter_destination" in played(keys(app, CARD["id"]))


def test_grouping_and_first_call_access_codes():
    app = card_app(grouping_access_code_prefix="LOCAL", play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    assert Originate(CARD["id"], DEST, "LOCAL", "0212345678") in keys(app, DEST + "#")
    app = card_app(FakeServices(first_call=True), grouping_access_code_prefix="LOCAL",
                   use_special_access_code_for_first_calls=True,
                   use_fixed_access_code_for_first_calls=True, play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    assert Originate(CARD["id"], DEST, "FIRSTCALL", "0212345678") in keys(app, DEST + "#")
    # FIRST#<access number> has no rating entry in this product: the grouping code rates it
    services = FakeServices(first_call=True)
    services.products[1] = {**PRODUCT, "rating": [
        r for r in PRODUCT["rating"] if not r["access_code"].startswith("FIRST#")]}
    app = card_app(services, grouping_access_code_prefix="LOCAL",
                   use_special_access_code_for_first_calls=True, play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    assert Originate(CARD["id"], DEST, "LOCAL", "0212345678") in keys(app, DEST + "#")


def test_first_call_code_of_the_access_number_when_the_fixed_code_is_off():
    app = card_app(FakeServices(first_call=True), use_special_access_code_for_first_calls=True,
                   play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    assert Originate(CARD["id"], DEST, f"FIRST#{ACCESS}", "0212345678") in keys(
        app, DEST + "#")


def test_without_a_grouping_prefix_the_access_number_is_the_access_code():
    """A rating entry per access number (no grouping prefix); plain when it has none."""
    services = FakeServices()
    services.products[1] = {**PRODUCT, "rating": [*PRODUCT["rating"],
                                                  {"access_code": ACCESS, "tariff_id": 2}]}
    app = card_app(services, play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    assert Originate(CARD["id"], DEST, ACCESS, "0212345678") in keys(app, DEST + "#")
    app = card_app(play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    assert Originate(CARD["id"], DEST, "", "0212345678") in keys(app, DEST + "#")


def test_time_announcement_in_seconds_or_rounded_up():
    # 10.00 at 0.30/min per second (LOCAL) = 33 min 20 s
    app = card_app(announce_time=True, grouping_access_code_prefix="LOCAL",
                   play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    actions = keys(app, DEST + "#")
    assert played(actions) == ["you_have", "num_33", "minutes", "and", "num_20", "seconds",
                               "for_this_call"]
    # the call is placed once the caller has heard the time
    assert not [a for a in actions if isinstance(a, Originate)]
    then = app.on_prompt_done()
    assert played(then) == ["please_wait"] and [a for a in then if isinstance(a, Originate)]
    app = card_app(announce_time=True, grouping_access_code_prefix="LOCAL",
                   seconds_rounding_mode="up", play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    assert played(keys(app, DEST + "#"))[:4] == ["you_have", "num_34", "minutes",
                                                 "for_this_call"]


def test_the_time_announced_is_never_more_than_the_platform_authorizes():
    """33 min 20 s of funds, but Kamailio caps every call at max_call_duration (here
    20 minutes): the caller hears 20 minutes, less the disconnect-before margin."""
    app = card_app(announce_time=True, grouping_access_code_prefix="LOCAL", longest=1200,
                   disconnect_call_before=30, play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    assert played(keys(app, DEST + "#")) == ["you_have", "num_19", "minutes", "and", "num_30",
                                             "seconds", "for_this_call"]


def test_announcement_tariff_and_disconnect_before():
    # ANNOUNCE+<access number>: 1.20/min -> 8 min 20 s, less 20 s disconnect margin
    app = card_app(announce_time=True, use_announcement_tariff=True, disconnect_call_before=20,
                   play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    assert played(keys(app, DEST + "#"))[:4] == ["you_have", "num_8", "minutes", "for_this_call"]


def test_disconnection_warning_beeps_then_repeats():
    app = card_app(disconnection_warning_interval=60, disconnection_warning_repeat=20,
                   play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    keys(app, DEST + "#")
    actions = app.on_toll_answered(max_duration=300)
    assert Bridge() in actions and SetTimer(240.0, WARN_TIMER) in actions
    assert app.state == BRIDGED
    first = app.on_timer(WARN_TIMER)
    assert played(first) == ["beep"] and SetTimer(20.0, WARN_TIMER) in first
    second = app.on_timer(WARN_TIMER)
    assert played(second) == ["beep"]


def test_voice_warning_says_the_time_left():
    app = card_app(disconnection_warning_interval=90, disconnection_warning_type="voice",
                   play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    keys(app, DEST + "#")
    app.on_toll_answered(max_duration=300)
    assert played(app.on_timer(WARN_TIMER)) == ["call_ends_in", "num_1", "minute", "and",
                                                "num_30", "seconds"]


def test_several_calls_in_one_session_until_max_dial_attempts():
    app = card_app(max_dial_attempts=2, play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    keys(app, DEST + "#")
    app.on_toll_answered(60)
    assert "enter_destination" in played(app.on_toll_ended(200))
    keys(app, DEST + "#")
    assert played(app.on_toll_ended(486)) == ["busy", "goodbye"]


def test_a_card_blocked_during_the_session_is_refused_at_the_next_dial():
    services = FakeServices()
    app = card_app(services, play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    services.accounts[CARD["id"]]["blocked"] = True
    assert played(keys(app, DEST + "#")) == ["card_blocked", "goodbye"]


def test_self_care_menu_balance_voucher_and_another_card():
    app = card_app(self_care_menu=True, announce_self_care_menu=True, play_welcome_message=False)
    app.start()
    assert played(keys(app, CARD["id"])) == ["enter_destination", "self_care_hint"]
    menu = played(keys(app, "#"))
    assert menu == ["sc_another_card", "sc_voucher", "sc_balance", "sc_back"]
    said = played(keys(app, "4"))
    assert said[:4] == ["your_balance_is", "num_10", "cur_USD_majors", "enter_destination"]
    keys(app, "#")
    assert played(keys(app, "2")) == ["enter_voucher"]


VOUCHER_NUMBER = "48213370551"


def voucher_menu(services, **settings):
    app = card_app(services, self_care_menu=True, play_welcome_message=False, **settings)
    app.start()
    keys(app, CARD["id"])
    keys(app, "#")
    assert played(keys(app, "2")) == ["enter_voucher"]
    return app


def test_a_voucher_tops_the_card_up_and_the_new_balance_is_announced():
    services = FakeServices(balance="10.00")
    services.vouchers[VOUCHER_NUMBER] = Decimal("5")
    app = voucher_menu(services)
    said = played(keys(app, VOUCHER_NUMBER))
    assert said[:4] == ["voucher_accepted", "your_balance_is", "num_15", "cur_USD_majors"]
    assert said[-1] == "enter_destination"
    assert services.redeemed == [(VOUCHER_NUMBER, CARD["id"])]


def test_a_wrong_voucher_number_is_asked_again_and_counts_toward_the_lockout():
    services = FakeServices()
    app = voucher_menu(services, lockout_failures=2)
    assert played(keys(app, "11111111111"))[:1] == ["invalid_voucher"]
    assert services.fails == {"ani:0212345678": 1, f"voucher@{ACCESS}": 1}
    assert played(keys(app, "22222222222")) == ["locked_out"]
    assert services.redeemed == []


def test_an_access_number_that_heard_too_many_wrong_vouchers_takes_none_for_a_while():
    services = FakeServices()
    services.vouchers[VOUCHER_NUMBER] = Decimal("5")
    # ten times what one caller may get wrong, keyed by many callers together
    services.fails[f"voucher@{ACCESS}"] = 10 * defaults("prepaid")["lockout_failures"]
    app = card_app(services, self_care_menu=True, play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    keys(app, "#")
    assert played(keys(app, "2"))[:2] == ["voucher_unavailable", "enter_destination"]
    assert services.redeemed == []


def test_a_voucher_when_the_database_is_down_is_not_the_callers_fault():
    services = FakeServices()
    services.database_down = True
    services.vouchers[VOUCHER_NUMBER] = Decimal("5")
    app = voucher_menu(services)
    said = played(keys(app, VOUCHER_NUMBER))
    assert said[:2] == ["voucher_unavailable", "enter_destination"]
    assert services.fails == {}


def test_ani_deregistration_in_self_care():
    services = FakeServices()
    services.aliases["ani44212345678"] = CARD["id"]
    app = card_app(services, ani_authentication=True, ani_translation_rule="s/^0/ani44/",
                   self_care_menu=True, allow_ani_deregistration=True,
                   play_welcome_message=False)
    app.start()
    assert "sc_deregister" in played(keys(app, "#"))
    assert played(keys(app, "3"))[0] == "ani_deregistered"
    assert services.deregistered == ["ani44212345678"]


def test_language_menu_choice_auto_select_and_brief():
    app = card_app(languages=["en", "es"], play_welcome_message=False)
    assert played(app.start()) == ["en/for_language", "en/num_1", "es/for_language",
                                   "es/num_2"]
    assert played(keys(app, "2")) == ["enter_card"] and app.language == "es"
    app = card_app(languages=["fr", "de"], brief_language_announcement=True,
                   language_auto_select=True, max_language_selection_attempts=1,
                   play_welcome_message=False)
    assert played(app.start()) == ["fr/select_language_brief"]
    app.on_prompt_done()
    assert played(app.on_timeout()) == ["enter_card"] and app.language == "fr"


@pytest.mark.parametrize("preferred, language", [(False, "es"), (True, "en")])
def test_the_cards_language_unless_the_apps_list_is_preferred(preferred, language):
    services = FakeServices()
    services.accounts[CARD["id"]] = {**CARD, "language": "es"}
    app = card_app(services, languages=["en"], conf_language_list_preferred=preferred,
                   play_welcome_message=False)
    assert played(app.start()) == ["enter_card"]
    keys(app, CARD["id"])
    assert app.language == language


@pytest.mark.parametrize("preferred, menu", [(False, False), (True, True)])
def test_an_on_net_callers_language_skips_the_menu_unless_the_list_is_preferred(
        preferred, menu):
    caller = {**CARD, "id": "17785551210", "language": "es"}
    app = card_app(account=caller, languages=["en", "es"],
                   conf_language_list_preferred=preferred, play_welcome_message=False)
    first = played(app.start())
    assert (first[0] == "en/for_language") is menu
    if not menu:
        assert first == ["enter_card"] and app.language == "es"


def test_a_language_chosen_in_the_menu_outranks_the_cards():
    services = FakeServices()
    services.accounts[CARD["id"]] = {**CARD, "language": "es"}
    app = card_app(services, languages=["en", "fr"], play_welcome_message=False)
    app.start()
    keys(app, "2")
    keys(app, CARD["id"])
    assert app.language == "fr"


def test_confirm_by_pound_suggests_the_pound_key_after_multi_digit_questions():
    app = card_app(confirm_by_pound=True, play_welcome_message=False)
    assert played(app.start()) == ["enter_card", "confirm_with_pound"]
    # the card number is taken on # only, not at its length
    assert played(keys(app, CARD["id"])) == []
    assert "enter_destination" in played(keys(app, "#"))
    assert "confirm_with_pound" not in played(card_app(play_welcome_message=False).start())


def test_balance_announcement_modes_for_credit_accounts():
    services = FakeServices()
    credit = {**CARD, "billing_model": "credit", "credit_limit": "0"}
    services.accounts[CARD["id"]] = credit
    services.funds = lambda account: (Decimal("4.25"), Decimal("-4.25"))
    app = card_app(services, announce_balance=True,
                   credit_balance_announcement="funds_balance", play_welcome_message=False)
    app.start()
    said = played(keys(app, CARD["id"]))  # limit 0: a prepaid customer hears its funds
    assert said[:4] == ["available_funds_are", "num_4", "cur_USD_majors", "and"]
    services.accounts[CARD["id"]] = {**credit, "credit_limit": "20.00"}  # postpaid
    app = card_app(services, announce_balance=True, announce_credit_limit=True,
                   credit_balance_announcement="funds_balance", play_welcome_message=False)
    app.start()
    said = played(keys(app, CARD["id"]))
    assert said[0] == "your_balance_is" and "credit_limit_is" in said
    app = card_app(services, announce_balance=True, credit_balance_announcement="balance",
                   play_welcome_message=False)
    app.start()
    assert played(keys(app, CARD["id"]))[0] == "your_balance_is"


@pytest.mark.parametrize("mode, prefix, calls, seconds, code", [
    ("no_charges", "", [(10, 70)], 0, ""),
    ("all_session_time", "IN", [(10, 70)], 40, "IN"),
    ("all_session_time", "", [(10, 70)], 40, "ACCESS_CODE.ANSWER"),
    ("all_session_time", "", [(0, 70)], 100, "ACCESS_CODE.ANSWER.FAIL"),
    ("outgoing_calls_only", "IN", [(10, 70), (75, 80)], 65, "IN"),
    ("outgoing_calls_only", "IN", [(0, 70)], 0, "IN"),
    ("all_session_time_unless_all_fail", "IN", [(10, 70)], 100, "IN"),
    ("all_session_time_unless_all_fail", "IN", [(0, 70)], 0, "IN"),
])
def test_incoming_session_accounting_modes(mode, prefix, calls, seconds, code):
    settings = {"incoming_session_accounting": mode, "incoming_access_code_prefix": prefix}
    start = Decimal(1000)
    outgoing = [OutgoingCall(start + c if c else Decimal(0), start + e) for c, e in calls]
    charge = session_charge(settings, start, start + 100, outgoing)
    assert (charge.seconds, charge.access_code) == (seconds, code)


def test_the_session_is_billed_to_the_card_when_it_ends():
    clock = Clock()
    app = card_app(clock=clock, incoming_session_accounting="outgoing_calls_only",
                   incoming_access_code_prefix="IN", rate_by="cld", play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    keys(app, DEST + "#")
    app.on_toll_answered(600)
    clock.t += 42
    actions = app.on_caller_hangup()
    assert Hangup("toll") in actions and StopPlay() in actions and app.state == DONE
    bills = [a for a in actions if isinstance(a, SessionXdr)]
    assert bills == [SessionXdr(account=CARD["id"], customer_id=1, cli="0212345678", cld=ACCESS,
                                access_code="IN", seconds=42, reason="Caller hung up")]
    assert app.on_caller_hangup() == []  # billed once


def test_an_unauthenticated_caller_is_not_billed():
    app = card_app(play_welcome_message=False)
    app.start()
    assert [a for a in app.on_caller_hangup() if isinstance(a, SessionXdr)] == []


def test_wrong_card_numbers_are_counted_across_calls_per_caller_number():
    services = FakeServices()
    for _ in range(3):  # three calls of three wrong cards each (lockout at 10 by default)
        app = card_app(services, play_welcome_message=False)
        app.start()
        for attempt in range(3):
            keys(app, "9999999999" + str(attempt))
    assert services.fails == {"ani:0212345678": 9}
    app = card_app(services, play_welcome_message=False)
    app.start()
    assert played(keys(app, "99999999990")) == ["locked_out"]
    assert played(card_app(services, play_welcome_message=False).start()) == ["locked_out"]
    # another caller number is not affected; anonymous callers count per access number
    assert played(card_app(services, ani="0299999999", play_welcome_message=False).start()) == [
        "enter_card"]
    app = card_app(services, ani="", play_welcome_message=False)
    app.start()
    keys(app, "99999999990")
    assert services.fails["ani:anonymous@16045550100"] == 1


def test_the_destination_translation_rule_turns_the_dialed_number_into_e164():
    app = card_app(destination_translation_rule="s/^00//", play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    assert Originate(CARD["id"], DEST, "", "0212345678") in keys(app, "00" + DEST + "#")


def test_pre_ring_music_until_the_far_end_rings_then_ringback():
    app = card_app(play_pre_ring_moh=True, moh_class="jazz", play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    actions = keys(app, DEST + "#")
    assert played(actions) == ["please_wait"]
    assert app.on_prompt_done() == [Play(("music",), loop=True, folder="moh/jazz")]
    assert app.on_toll_ringing() == [StopPlay(), Play(("ringback",), loop=True)]
    assert app.on_toll_ringing() == []  # 180 then 183: one ringback
    assert app.on_toll_answered(100)[:2] == [StopPlay(), Bridge()]


def test_a_fault_bills_the_session_so_far_once():
    clock = Clock()
    app = card_app(clock=clock, incoming_session_accounting="all_session_time_unless_all_fail",
                   play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    keys(app, DEST + "#")
    app.on_toll_answered(600)
    clock.t += 30
    bills = [a for a in app.on_fault() if isinstance(a, SessionXdr)]
    assert [(b.seconds, b.reason) for b in bills] == [(30, "Service fault")]
    assert app.on_fault() == [] and app.on_caller_hangup() == []


def test_dynamic_reauthorization_asks_periodically_and_moves_the_warning():
    from ivr.actions import Reauthorize
    from ivr.apps.prepaid import REAUTH_TIMER
    clock = Clock()
    app = card_app(clock=clock, dynamic_reauthorization=True, disconnection_warning_interval=5,
                   play_welcome_message=False)
    app.start()
    keys(app, CARD["id"])
    keys(app, DEST + "#")
    armed = app.on_toll_answered(max_duration=10)
    assert SetTimer(5.0, REAUTH_TIMER) in armed and SetTimer(5.0, WARN_TIMER) in armed
    clock.t += 5
    assert app.on_timer(REAUTH_TIMER) == [Reauthorize(), SetTimer(5.0, REAUTH_TIMER)]
    # a top-up: Kamailio now allows 110 s; the warning moves to 105 s into the call
    assert app.on_toll_reauthorized(110) == [SetTimer(100.0, WARN_TIMER)]
    assert app.on_toll_reauthorized(110) == []  # nothing new
    assert card_app(play_welcome_message=False).on_timer(REAUTH_TIMER) == []
