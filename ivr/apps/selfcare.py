"""Balance information and account top-up via voucher (voice-application-settings.txt):
two applications of their own behind their access numbers, on the prepaid card's login.

Both authenticate as the prepaid card does (the ANI through its translation rule, else
the card number and password, with the same lockouts), or, with use_sip_account_info, take
the account Kamailio authenticated when one of the platform's phones calls. Balance
information then announces the balance (credit_balance_announcement, announce_credit_limit)
and says goodbye; top-up asks for a voucher, credits it, announces the new balance and
says goodbye. The session is not charged (incoming_session_accounting stays no_charges).
"""
from __future__ import annotations

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


class BalanceInfo(SelfCare):
    app_type = "balance_info"

    def _after_login(self) -> list[Action]:
        return self._chain(self._balance_prompts(), self._carry_on)


class VoucherTopup(SelfCare):
    app_type = "voucher_topup"

    def _after_login(self) -> list[Action]:
        return self._ask_voucher()
