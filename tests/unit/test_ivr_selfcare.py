"""Balance information, voucher top-up and balance transfer (ivr/apps/selfcare.py): the
prepaid card's login, then one service and goodbye; against in-memory services (the same
fake as the prepaid card's tests)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from billing.prepaid import TRANSFER_REFUSED
from ivr.actions import Hangup, Originate
from ivr.apps.prepaid import Caller
from ivr.apps.selfcare import BalanceInfo, BalanceTransfer, VoucherTopup
from provisioning.app_settings import defaults
from tests.unit.test_ivr_prepaid import ACCESS, CARD, Clock, FakeServices, keys, played

pytestmark = pytest.mark.unit

ANI_ALIAS = "ani44212345678"
BY_ANI = {"ani_translation_rule": "s/^0/ani44/"}


class Services(FakeServices):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.aliases[ANI_ALIAS] = CARD["id"]
        self.donors: dict[str, Decimal] = {}   # card number -> what it may give

    def transfer_balance(self, card, account_id, minimum):
        amount = self.donors.pop(card, None)
        if amount is None or amount < minimum:
            return TRANSFER_REFUSED
        self.balance += amount
        return amount


def app_of(kind, services, ani: str = "0212345678", account=None, **settings):
    app = {"id": 9, "type": kind.app_type, "settings": {**defaults(kind.app_type), **settings}}
    caller = Caller(call_id="c1", session="c1", access_number=ACCESS, ani=ani, app=app,
                    account=account)
    return kind(caller, services, now=Clock())


def until_hangup(app, actions) -> list[str]:
    """Every prompt said until the app hangs up (each prompt played to its end)."""
    said = played(actions)
    for _ in range(10):
        if any(isinstance(a, Hangup) for a in actions):
            return said
        actions = app.on_prompt_done()
        said += played(actions)
    raise AssertionError(f"no hang-up after {said}")


def test_balance_information_by_ani_says_the_balance_then_goodbye():
    services = Services(balance="5.00")
    app = app_of(BalanceInfo, services, **BY_ANI)
    said = until_hangup(app, app.start())
    assert said[0] == "welcome" and "your_balance_is" in said and said[-1] == "goodbye"
    assert "enter_card" not in said and "enter_destination" not in said


def test_balance_information_asks_the_card_when_the_ani_names_no_account():
    app = app_of(BalanceInfo, Services(), ani="0299999999", **BY_ANI)
    actions = app.start() + app.on_prompt_done()
    assert "enter_card" in played(actions)
    said = until_hangup(app, keys(app, CARD["id"]))
    assert "your_balance_is" in said


def test_a_phone_of_the_platform_is_its_own_account_with_sip_account_info():
    services = Services()
    phone = services.accounts[CARD["id"]]
    app = app_of(BalanceInfo, services, ani=CARD["id"], account=phone,
                 use_sip_account_info=True)
    said = until_hangup(app, app.start())
    assert "your_balance_is" in said and "enter_card" not in said


def test_voucher_top_up_credits_then_says_the_new_balance_and_goodbye():
    services = Services(balance="1.00")
    services.vouchers["48213370551"] = Decimal("2.50")
    app = app_of(VoucherTopup, services, **BY_ANI)
    actions = app.start() + app.on_prompt_done()
    assert played(actions)[-1] == "enter_voucher"
    said = until_hangup(app, keys(app, "48213370551"))
    assert said[:2] == ["voucher_accepted", "your_balance_is"] and said[-1] == "goodbye"
    assert services.balance == Decimal("3.50")
    assert not any(isinstance(a, Originate) for a in keys(app, "1"))


def test_a_wrong_voucher_counts_towards_the_lockout_and_ends_after_the_attempts():
    services = Services()
    app = app_of(VoucherTopup, services, max_login_attempts=2, **BY_ANI)
    app.start()
    app.on_prompt_done()
    assert played(keys(app, "11111111111")) == ["invalid_voucher", "enter_voucher"]
    said = until_hangup(app, keys(app, "22222222222"))
    assert said[-1] == "goodbye" and services.balance == Decimal("10.00")
    # counted for the caller and for the access number (a guesser may change numbers)
    assert services.fails == {"ani:0212345678": 2, f"voucher@{ACCESS}": 2}


def test_balance_transfer_moves_a_donor_card_once():
    services = Services(balance="5.00")
    services.donors["70000000999"] = Decimal("3.00")
    app = app_of(BalanceTransfer, services, **BY_ANI)
    actions = app.start() + app.on_prompt_done()
    assert played(actions)[-1] == "enter_donor_card"
    said = until_hangup(app, keys(app, "70000000999"))
    assert said[:2] == ["balance_transferred", "your_balance_is"]
    assert services.balance == Decimal("8.00")


def test_balance_transfer_below_the_minimum_sum_is_refused_and_counted():
    services = Services()
    services.donors["70000000999"] = Decimal("3.00")
    app = app_of(BalanceTransfer, services, minimum_sum="5", **BY_ANI)
    app.start()
    app.on_prompt_done()
    assert played(keys(app, "70000000999"))[0] == "transfer_refused"
    assert services.balance == Decimal("10.00") and services.fails[f"voucher@{ACCESS}"] == 1


def test_balance_transfer_switched_off_says_so():
    app = app_of(BalanceTransfer, Services(), allow_transfer_from_debit_accounts=False, **BY_ANI)
    said = until_hangup(app, app.start())
    assert "transfer_unavailable" in said and "enter_donor_card" not in said
