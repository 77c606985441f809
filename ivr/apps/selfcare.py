"""Balance information and account top-up via voucher (voice-application-settings.txt):
two applications of their own behind their access numbers, on the prepaid card's login;
balance transfer (from another prepaid card) is the third.

Both authenticate as the prepaid card does (the ANI through its translation rule, else
the card number and password, with the same lockouts), or, with use_sip_account_info, take
the account Kamailio authenticated when one of the platform's phones calls. Balance
information then announces the balance (credit_balance_announcement, announce_credit_limit)
and says goodbye; top-up asks for a voucher, credits it, announces the new balance and
says goodbye. The session is not charged (incoming_session_accounting stays no_charges).
"""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from billing import prepaid
from ivr.actions import Action
from ivr.apps.prepaid import Prepaid


class SelfCare(Prepaid):
    """A prepaid login that ends in one service instead of dialing."""

    def _authenticate(self) -> list[Action]:
        if self.settings.get("use_sip_account_info") and self.caller.account is not None:
            self._log("AUTH", f"account {self.caller.account['id']} as Kamailio authenticated")
            return self._card_ready(self.caller.account, prepaid.BY_ANI)
        self.settings["ani_authentication"] = True  # these applications start by the ANI
        return super()._authenticate()

    def _may_register(self) -> bool:
        return False  # no auto registration of the ANI here

    def _carry_on(self) -> list[Action]:
        return self._farewell()

    def _chain(self, prompts: list[str], then: Callable[[], list[Action]]) -> list[Action]:
        """What is said before goodbye is said with it, as one announcement."""
        if then == self._carry_on:
            return self._farewell(*prompts)
        return super()._chain(prompts, then)


class BalanceInfo(SelfCare):
    app_type = "balance_info"

    def _after_login(self) -> list[Action]:
        return self._chain(self._balance_prompts(), self._carry_on)


class VoucherTopup(SelfCare):
    app_type = "voucher_topup"

    def _after_login(self) -> list[Action]:
        return self._ask_voucher()


class BalanceTransfer(SelfCare):
    """Top up the authenticated card with the whole balance of another prepaid card
    (provisioning/transfers.py: a debit card of the same product and currency, never used
    for calls, holding at least minimum_sum). A refused card number counts towards the
    caller's and the access number's lockout, as a wrong voucher does."""
    app_type = "balance_transfer"

    def _after_login(self) -> list[Action]:
        if not self.settings["allow_transfer_from_debit_accounts"]:
            return self._farewell("transfer_unavailable")
        if self.services.failures(self._voucher_key()) >= self._voucher_limit():
            self._log("LOCKOUT", f"balance transfer at {self.caller.access_number} is locked")
            return self._farewell("transfer_unavailable")
        ask = self._question(("enter_donor_card",), self._int("min_card_length"),
                             self._int("max_card_length"))
        return self._ask(ask, on_value=self._transfer, on_fail=self._carry_on)

    def _transfer(self, card: str) -> list[Action]:
        assert self.card is not None
        minimum = Decimal(str(self.settings["minimum_sum"] or 0))
        outcome = self.services.transfer_balance(card, str(self.card["id"]), minimum)
        if outcome == prepaid.VOUCHER_UNAVAILABLE:
            return self._farewell("transfer_unavailable")
        if not isinstance(outcome, Decimal):
            self._log("TRANSFER", "card number refused")
            self.services.record_failure(self._voucher_key(), self._int("lockout_seconds"))
            return self._wrong(("transfer_refused",))
        self._log("TRANSFER", f"card {self.card['id']} credited {outcome}")
        self.card = self.services.account(str(self.card["id"])) or self.card
        self.ask = None
        return self._chain(["balance_transferred"] + self._balance_prompts(), self._carry_on)
