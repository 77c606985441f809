"""Callback calling's decisions (ivr/apps/callback.py): whom to call back, who pays leg A,
which requests are refused, and how much of the funds leg A may hold."""
from __future__ import annotations

import pytest

from ivr.apps.callback import (
    PER_ACCESS_NUMBER,
    PER_NUMBER,
    Callback,
    Request,
    leg_a_cap,
    plan,
)
from ivr.apps.prepaid import Caller
from tests.unit.test_ivr_prepaid import ACCESS, CARD, Clock, FakeServices, keys, played

pytestmark = pytest.mark.unit

ANI = "0212345678"


class Services(FakeServices):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.aliases["cb44212345678"] = CARD["id"]
        self.accounts[ACCESS] = {**CARD, "id": ACCESS, "associated_number": "16045550111"}


def app(**settings) -> dict:
    return {"id": 5, "type": "callback", "settings": {
        "ani_translation_rule": "s/^0/cb44/", "destination_translation_rule": "s/^0/1/",
        "wait_time": 5, **settings}}


def test_by_ani_the_card_pays_and_the_translated_number_is_called_back_after_wait_time():
    request = plan(app(leg_a_cld_prefix="LEG_A"), "r1", ACCESS, ANI, Services(), 100.0)
    assert request == Request(call_id="r1", access_number=ACCESS, ani=ANI, payer=CARD["id"],
                              number="1212345678", card=CARD["id"],
                              leg_a_code=f"LEG_A.{ACCESS}", due=105.0)


def test_by_ani_an_unknown_or_anonymous_caller_is_never_called_back():
    assert plan(app(), "r1", ACCESS, "0299999999", Services(), 0) == "unknown caller"
    assert plan(app(), "r1", ACCESS, "", Services(), 0) == "anonymous caller"


def test_by_dnis_the_access_numbers_account_is_called_on_its_associated_number():
    request = plan(app(authenticate_by="dnis"), "r1", ACCESS, "", Services(), 0)
    assert isinstance(request, Request)
    assert (request.payer, request.number, request.card) == (ACCESS, "16045550111", ACCESS)


def test_by_none_the_internal_account_pays_leg_a_and_the_card_is_asked_later():
    request = plan(app(authenticate_by="none", internal_account=CARD["id"]), "r1", ACCESS,
                   ANI, Services(), 0)
    assert isinstance(request, Request)
    assert (request.payer, request.card, request.number) == (CARD["id"], "", "1212345678")


def test_a_blocked_account_is_not_called_back():
    services = Services()
    services.accounts[CARD["id"]]["blocked"] = True
    assert isinstance(plan(app(), "r1", ACCESS, ANI, services, 0), str)


def test_send_authorization_refuses_a_card_without_funds_or_without_a_rate_for_leg_a():
    assert plan(app(send_authorization=True), "r1", ACCESS, ANI, Services(balance="0"),
                0) == "insufficient funds"
    no_rate = app(send_authorization=True, leg_a_cld_prefix="NOPE")
    assert plan(no_rate, "r1", ACCESS, ANI, Services(), 0) == "leg A is not rated or forbidden"


def test_send_authorization_with_a_minimum_sufficient_time():
    # 0.60 per minute: 0.05 buys 5 s of leg A, not the 60 s asked
    refused = plan(app(send_authorization=True, min_sufficient_time=60), "r1", ACCESS, ANI,
                   Services(balance="0.05"), 0)
    assert isinstance(refused, str) and "60 s needed" in refused


def test_a_number_asking_again_and_again_is_refused_beyond_its_limit():
    services = Services()
    outcomes = [plan(app(), f"r{n}", ACCESS, ANI, services, 0) for n in range(PER_NUMBER + 1)]
    assert all(isinstance(o, Request) for o in outcomes[:PER_NUMBER])
    assert outcomes[-1] == "too many requests from this number"


def test_an_access_number_takes_only_so_many_requests_from_everyone():
    services = Services()
    for n in range(PER_ACCESS_NUMBER):
        services.aliases[f"cb44{n:09d}"] = CARD["id"]
        assert isinstance(plan(app(), f"r{n}", ACCESS, f"0{n:09d}", services, 0), Request)
    assert plan(app(), "last", ACCESS, ANI, services, 0) == \
        "too many requests at this access number"


def test_leg_a_may_hold_half_the_funds():
    request = plan(app(), "r1", ACCESS, ANI, Services(balance="1.00"), 0)
    assert isinstance(request, Request)
    # what half the funds buy of leg A: more funds, a longer leg A
    cap = leg_a_cap(request, Services(balance="1.00"), 14400)
    full = leg_a_cap(request, Services(balance="2.00"), 14400)
    assert 0 < cap < full


def test_the_app_on_leg_a_skips_the_login_and_asks_the_destination():
    services = Services()
    caller = Caller(call_id="r1", session="r1", access_number=ACCESS, ani="1212345678",
                    app=app(play_welcome_message=False))
    card = Callback(caller, services, now=Clock(), known=services.accounts[CARD["id"]])
    assert "enter_destination" in played(card.start())
    assert card.card is not None and card.card["id"] == CARD["id"]


def test_strict_authorization_drops_leg_a_without_funds_for_leg_b():
    services = Services(balance="0")
    caller = Caller(call_id="r1", session="r1", access_number=ACCESS, ani="1212345678",
                    app=app(play_welcome_message=False, strict_authorization=True))
    card = Callback(caller, services, now=Clock(), known=services.accounts[CARD["id"]])
    assert played(card.start())[:2] == ["insufficient_funds", "goodbye"]


def test_leg_b_is_rated_under_the_leg_b_code():
    services = Services()
    services.products[1] = {"id": 1, "rating": [{"access_code": f"LEG_B.{ACCESS}",
                                                 "tariff_id": 2}]}
    caller = Caller(call_id="r1", session="r1", access_number=ACCESS, ani="1212345678",
                    app=app(play_welcome_message=False, leg_b_cld_prefix="LEG_B"))
    card = Callback(caller, services, now=Clock(), known=services.accounts[CARD["id"]])
    card.start()
    card.on_prompt_done()
    actions = keys(card, "12125550123#")
    originate = [a for a in actions if type(a).__name__ == "Originate"]
    assert originate and originate[0].access_code == f"LEG_B.{ACCESS}"


def test_an_unknown_ani_with_auto_registration_is_called_back_asked_the_card_and_registered():
    services = Services()
    internal = {**CARD, "id": "16045550199"}
    services.accounts[internal["id"]] = internal
    settings = {"auto_registration": True, "register_without_confirmation": True,
                "internal_account": internal["id"], "play_welcome_message": False}
    request = plan(app(**settings), "r1", ACCESS, "0299999999", services, 0)
    assert isinstance(request, Request)
    assert (request.payer, request.card) == (internal["id"], "")
    caller = Caller(call_id="r1", session="r1", access_number=ACCESS, ani=request.number,
                    app=app(**settings))
    card = Callback(caller, services, now=Clock(), requester="0299999999")
    assert "enter_card" in played(card.start() + card.on_prompt_done())
    keys(card, CARD["id"])
    assert services.registered == [("cb44299999999", CARD["id"])]


class TemplateServices(Services):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.made: list[tuple[str, str]] = []

    def account_from_template(self, template_id, account_id):
        if template_id not in self.accounts or account_id in self.accounts:
            return False
        self.accounts[account_id] = {**self.accounts[template_id], "id": account_id}
        self.made.append((template_id, account_id))
        return True


def test_auto_registration_with_a_template_gives_an_unknown_caller_an_account_of_its_own():
    services = TemplateServices()
    request = plan(app(auto_registration=True, template_account=CARD["id"]), "r1", ACCESS,
                   "0299999999", services, 0)
    assert services.made == [(CARD["id"], "cb44299999999")]
    assert isinstance(request, Request)
    assert (request.payer, request.card) == ("cb44299999999", "cb44299999999")


def test_a_template_that_is_gone_calls_nobody_back():
    services = TemplateServices()
    refused = plan(app(auto_registration=True, template_account="nobody"), "r1", ACCESS,
                   "0299999999", services, 0)
    assert isinstance(refused, str) and services.made == []


def test_leg_b_is_not_placed_when_leg_a_has_less_time_left_than_it_takes_to_connect():
    services = Services()
    clock = Clock()
    caller = Caller(call_id="r1", session="r1", access_number=ACCESS, ani="1212345678",
                    app=app(play_welcome_message=False, expected_connect_time=20))
    card = Callback(caller, services, now=clock, known=services.accounts[CARD["id"]])
    card.leg_a_answered(30)
    card.start()
    card.on_prompt_done()
    clock.t += 15  # 15 s of leg A left, 20 needed
    actions = keys(card, "12125550123#")
    assert not any(type(a).__name__ == "Originate" for a in actions)
    assert "insufficient_funds" in played(actions)
