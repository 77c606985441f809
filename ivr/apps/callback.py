"""Callback calling (voice-application-settings.txt, "Callback calling"): a caller rings
the callback access number and is refused at once; after `wait_time` the IVR calls them
back (leg A, through Kamailio and the PSTN gateway, billed to the account, under
LEG_A.<access number> when leg_a_cld_prefix is set) and, once answered, asks for the
destination and places leg B (under LEG_B.<access number>), bridged to leg A.

`plan()` decides whether and whom to call back, by `authenticate_by`:
  ani   the caller's number through ani_translation_rule names the account (an alias);
        the number called back is the caller's through destination_translation_rule
  dnis  the account whose ID is the access number; called back on its associated number
  none  nobody yet: called back (billed to the internal account, default the access
        number's own account), asked for the card number once answered
and refuses (nothing is called) an anonymous or unknown caller, a blocked account, one
without funds when send_authorization is on (or too little for min_sufficient_time), and
requests beyond the rate limits per number and per access number: a callback service
must never become a free call generator for strangers.

`Callback` is the prepaid card once leg A answers: the account is known (or the card is
asked), the destination is rated under the LEG_B code, and the session itself is not
billed here (leg A has its own xDR from Kamailio).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from billing import prepaid
from billing.classify import check_caller, find_rate
from billing.rating import Rate, RateError, is_paid
from ivr.actions import Action, Rerate
from ivr.apps.prepaid import ORIGINATING, Prepaid, Services
from tollgate.directory import Record

log = logging.getLogger("ivr.callback")

CALLBACK_FAIL = "CALLBACK_FAIL"   # the access code of a leg A whose leg B failed
# requests a number may make, and an access number may take, per window
PER_NUMBER, PER_NUMBER_WINDOW_S = 3, 300
PER_ACCESS_NUMBER, PER_ACCESS_NUMBER_WINDOW_S = 60, 60


@dataclass(frozen=True)
class Request:
    """A callback to place: who pays leg A, whom to call, when."""
    call_id: str            # the request's INVITE: the session of both legs
    access_number: str
    ani: str
    payer: str              # leg A's account (the card, or the internal account)
    number: str             # the number called back
    card: str               # the authenticated account ('' with authenticate_by none)
    leg_a_code: str         # leg A's access code ('' = plain)
    due: float              # monotonic time to call


def settings_of(app: Mapping[str, Any]) -> dict[str, Any]:
    from provisioning.app_settings import defaults
    return {**defaults("prepaid"), **defaults("callback"), **(app.get("settings") or {})}


def leg_code(prefix: object, access_number: str) -> str:
    """LEG_A -> LEG_A.<access number>; no prefix: the plain rating entry."""
    return f"{prefix}.{access_number}" if prefix else ""


def plan(app: Mapping[str, Any], call_id: str, access_number: str, ani: str,
         services: Services, now: float) -> Request | str:
    """The callback to place for this request, or why none is (logged by the caller)."""
    s = settings_of(app)
    by = str(s["authenticate_by"])
    if not ani and by != "dnis":
        return "anonymous caller"
    if by != "dnis":  # counted before anything is looked up: probing costs attempts too
        if services.record_failure(f"cb:{ani}", PER_NUMBER_WINDOW_S) > PER_NUMBER:
            return "too many requests from this number"
    if services.record_failure(f"cb@{access_number}", PER_ACCESS_NUMBER_WINDOW_S) \
            > PER_ACCESS_NUMBER:
        return "too many requests at this access number"
    card: Record | None = None
    auth_id = services.translate(str(s["ani_translation_rule"]), ani) if by == "ani" else ""
    identity = services.identity(auth_id) if auth_id else None
    if by == "ani" and identity is None and not s["auto_registration"]:
        return "unknown caller"
    if by == "ani" and identity is None and s["template_account"]:
        # auto registration with a template: the caller gets an account of its own
        if not services.account_from_template(str(s["template_account"]), auth_id):
            return f"no account made from template {s['template_account']}"
        identity = services.identity(auth_id)
        if identity is None:
            return "the new account is not readable yet"
    if identity is not None:
        card = identity.account
        payer, number = card, services.translate(str(s["destination_translation_rule"]), ani)
    elif by == "dnis":
        card = services.account(access_number)
        if card is None or not card.get("associated_number"):
            return "no account with the access number and an associated number"
        payer, number = card, str(card["associated_number"])
    else:  # none, or an unknown ANI that auto registration may register after the PIN
        internal = services.account(str(s["internal_account"] or access_number))
        if internal is None:
            return "no internal account"
        payer, number = internal, services.translate(str(s["destination_translation_rule"]),
                                                     ani)
    if not number.isdigit():
        return f"cannot call back {number!r}"
    customer = services.customer(int(payer.get("customer_id") or 0))
    refusal = check_caller(payer, customer or {"blocked": True})
    if refusal is not None:
        return refusal.reason
    code = leg_code(s["leg_a_cld_prefix"], access_number)
    if s["send_authorization"]:
        why = _cannot_afford(s, payer, number, code, services)
        if why:
            return why
    return Request(call_id=call_id, access_number=access_number, ani=ani,
                   payer=str(payer["id"]), number=number,
                   card=str(card["id"]) if card is not None else "", leg_a_code=code,
                   due=now + int(s["wait_time"]))


def _cannot_afford(s: Mapping[str, Any], payer: Record, number: str, code: str,
                   services: Services) -> str:
    """Send authorization: leg A must be rated and the payer afford min_sufficient_time."""
    product = services.product(int(payer.get("product_id") or 0)) or {}
    try:
        rate = find_rate(product, number, services.rate, code)
    except (RateError, KeyError, TypeError, ValueError):
        rate = None
    if rate is None or rate.forbidden:
        return "leg A is not rated or forbidden"
    available, _ = services.funds(payer)
    least = int(s["min_sufficient_time"])
    if available is not None and available <= 0:
        return "insufficient funds"
    if least and available is not None:
        seconds = prepaid.talk_seconds(rate, available, 0, least)
        if seconds is not None and seconds < least:
            return f"funds for {seconds} s of leg A, {least} s needed"
    return ""


def leg_a_cap(request: Request, services: Services, longest: int) -> int:
    """The seconds leg A is authorized for at most (0: as its funds allow): half the
    payer's funds, so that leg B, placed later, finds the other half. Kamailio holds
    what that many seconds of leg A cost; both legs stay within the funds."""
    payer = services.account(request.payer)
    if payer is None:
        return 0
    product = services.product(int(payer.get("product_id") or 0)) or {}
    try:
        rate = find_rate(product, request.number, services.rate, request.leg_a_code)
    except (RateError, KeyError, TypeError, ValueError):
        return 0
    available, _ = services.funds(payer)
    if rate is None or not is_paid(rate) or available is None:
        return 0
    seconds = prepaid.talk_seconds(rate, available / 2, 0, longest)
    return max(1, seconds) if seconds is not None else 0


@dataclass
class Callback(Prepaid):
    """The prepaid card on leg A (the caller leg the IVR placed itself)."""
    known: Record | None = None            # authenticated by ani or dnis
    requester: str = ""                    # the request's ANI (auto registration)
    leg_b_prefix: str = field(init=False, default="")
    fail_rated: bool = False               # leg A is rated under CALLBACK_FAIL now
    leg_a_ends: float | None = None        # when leg A's authorized time runs out
    leg_b_connected: bool = False
    app_type = "callback"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.leg_b_prefix = str(self.settings["leg_b_cld_prefix"] or "")

    def _authenticate(self) -> list[Action]:
        if self.known is not None:
            return self._card_ready(self.known, prepaid.BY_ANI)
        self.settings["ani_authentication"] = False  # authenticate_by none: the card
        actions = super()._authenticate()
        if self.requester:  # what auto registration registers: the caller's own ANI
            self.ani_id = self.services.translate(str(self.settings["ani_translation_rule"]),
                                                  self.requester)
        return actions

    def _no_slot(self, card: Record) -> list[Action] | None:
        return None  # leg A is an outgoing call of the client, counted by Kamailio

    def _after_login(self) -> list[Action]:
        assert self.card is not None
        available, _ = self.services.funds(self.card)
        if self.settings["strict_authorization"] and available is not None and available <= 0:
            self._log("CALLBACK", f"card {self.card['id']} cannot pay leg B: dropped")
            return self._farewell("insufficient_funds")
        return super()._after_login()

    def _rate(self, card: Record, number: str) -> tuple[Rate | None, str]:
        if not self.leg_b_prefix:
            return super()._rate(card, number)
        code = leg_code(self.leg_b_prefix, self.caller.access_number)
        product = self._product(card)
        if not number.isdigit():
            return None, code
        try:
            return find_rate(product, number, self.services.rate, code), code
        except (RateError, KeyError, TypeError, ValueError):
            return None, code

    def leg_a_answered(self, max_duration: int | None) -> None:
        """Leg A is up, authorized for `max_duration` seconds (None: as long as wanted)."""
        if max_duration:
            self.leg_a_ends = self.now() + max_duration

    def _destination(self, dialed: str) -> list[Action]:
        """Expected connect time: leg B is not placed when leg A has less time left than
        setting it up takes."""
        expected = self._int("expected_connect_time")
        if self.leg_a_ends is not None and self.leg_a_ends - self.now() < expected:
            self._log("CALLBACK", f"leg A ends in {self.leg_a_ends - self.now():.0f} s, "
                                  f"{expected} s needed to connect leg B")
            self.dial_attempts += 1
            return self._next_dial(("insufficient_funds",))
        return super()._destination(dialed)

    def on_toll_answered(self, max_duration: int | None = None) -> list[Action]:
        actions = super().on_toll_answered(max_duration)
        self.leg_b_connected = True
        if self.fail_rated:  # leg B connected after all: leg A at its own rate again
            self.fail_rated = False
            code = leg_code(self.settings["leg_a_cld_prefix"], self.caller.access_number)
            return [Rerate(code)] + actions
        return actions

    def on_toll_ended(self, code: int) -> list[Action]:
        failed = self.state == ORIGINATING and not self.leg_b_connected
        actions = super().on_toll_ended(code)
        if failed and self.settings["special_charge_if_leg_b_fails"] and not self.fail_rated \
                and self.card is not None \
                and prepaid.choose_code(self._product(self.card), [CALLBACK_FAIL]):
            self.fail_rated = True  # "Special charge if LegB fails"
            self._log("CALLBACK", "leg B failed: leg A rated under CALLBACK_FAIL")
            return [Rerate(CALLBACK_FAIL)] + actions
        return actions

    def _session_xdr(self, reason: str) -> list[Action]:
        return []  # leg A is billed by Kamailio as the call it is (its own xDR)

