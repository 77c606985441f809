"""Prepaid card calling (voice-application-settings.txt, its first section): a caller
reaches an access number, is authenticated by ANI, ANI + auth code or card number (PIN),
hears balance and time, dials one destination after another, and is billed per the
application's rating and session-accounting options.

A state machine like ivr/passthrough.py: each handler takes one event and returns the
actions (ivr/actions.py) the media server carries out; lookups and the few writes (ANI
registration) go through `Services`, so every branch runs in unit tests without SIP.
Digit input is an `ivr.collect.Ask`; the app keeps one at a time, with what to do with
its outcome.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from billing import prepaid
from billing.classify import check_caller, find_rate
from billing.prepaid import OutgoingCall
from billing.rating import MAX_CALL_SECONDS, Rate, RateError, is_paid
from ivr import metrics, say
from ivr.actions import (
    PROMPT_TIMER,
    Action,
    Bridge,
    Hangup,
    Originate,
    Play,
    Reauthorize,
    SessionXdr,
    SetTimer,
    StopPlay,
)
from ivr.collect import Ask, Failed, Result, carry_out
from tollgate.directory import Identity, Record

log = logging.getLogger("ivr.prepaid")

WARN_TIMER = "warning"          # the next disconnection warning
REAUTH_TIMER = "reauthorize"    # the next dynamic reauthorization
REAUTH_EVERY_S = 10.0           # at most this long between two reauthorizations
DESTINATION_DIGITS = 32
REGISTER, SKIP_REGISTER = "1", "2"
# wrong voucher numbers one access number takes (from all its callers together) for each
# one a single caller may key before the lockout
VOUCHER_GUESSES_PER_LOCKOUT = 10
# self-care menu keys
ANOTHER_CARD, VOUCHER, DEREGISTER, BALANCE, BACK = "1", "2", "3", "4", "*"
# prompts of a refused outgoing call, by its final SIP code
REFUSAL_PROMPTS = {402: "insufficient_funds", 403: "forbidden", 404: "not_found",
                   486: "busy", 600: "busy", 480: "unavailable", 503: "unavailable"}


class Services(Protocol):
    """What the application reads and writes (ivr.services.Services in production)."""

    def identity(self, some_id: str) -> Identity | None: ...
    def account(self, account_id: str) -> Record | None: ...
    def customer(self, customer_id: int) -> Record | None: ...
    def product(self, product_id: int) -> Record | None: ...
    def rate(self, tariff_id: int, number: str) -> Record | None: ...
    def funds(self, account: Record) -> tuple[Decimal | None, Decimal | None]: ...
    def first_call(self, account: Record) -> bool: ...
    def mark_called(self, account: Record) -> None: ...
    def register_ani(self, alias: str, account_id: str) -> bool: ...
    def deregister_ani(self, alias: str, account_id: str) -> bool: ...
    def translate(self, rule: str, number: str) -> str: ...
    def failures(self, key: str) -> int: ...
    def record_failure(self, key: str, ttl: int) -> int: ...
    def take_slot(self, customer: Record, call_id: str) -> bool: ...
    def give_back_slot(self, customer_id: object, call_id: str) -> None: ...
    def redeem_voucher(self, code: str, account_id: str) -> Decimal | str: ...
    def transfer_balance(self, card: str, account_id: str, minimum: Decimal) -> Decimal | str: ...
    def account_from_template(self, template_id: str, account_id: str) -> bool: ...


@dataclass
class Caller:
    """Who reached the access number, as Kamailio's signed headers tell."""
    call_id: str
    session: str
    access_number: str
    ani: str                      # the caller's number, vouched for by Kamailio
    app: Mapping[str, Any]
    account: Record | None = None  # the on-net account that called, if any
    longest: int = MAX_CALL_SECONDS  # the longest call Kamailio authorizes (max_call_duration)


# "Confirm by pound": the suggestion after a multi-digit question
CONFIRM = "confirm_with_pound"

# states
STARTING, ASKING, ORIGINATING, BRIDGED, FAREWELL, DONE = (
    "starting", "asking", "originating", "bridged", "farewell", "done")


@dataclass
class Prepaid:
    caller: Caller
    services: Services
    now: Callable[[], float] = time.time
    state: str = STARTING
    settings: dict[str, Any] = field(init=False)
    language: str = say.LANGUAGES[0]
    language_chosen: bool = False   # the caller picked it in the language menu
    card: Record | None = None
    ani_alias: str = ""             # the ANI's alias when it authenticated the card
    ani_id: str = ""                # the ANI after the ANI translation rule
    ask: Ask | None = None
    on_value: Callable[[str], list[Action]] | None = None
    on_key: Callable[[str], list[Action]] | None = None
    on_fail: Callable[[], list[Action]] | None = None
    dial_attempts: int = 0
    dest: str = ""
    access_code: str = ""
    started: Decimal = Decimal(0)
    calls: list[OutgoingCall] = field(default_factory=list)
    connected_at: Decimal = Decimal(0)
    warn_at: float = 0.0            # seconds into the call of the next warning
    ends_at: float = 0.0            # seconds into the call when it is cut
    # what to do when the prompt playing now ends, stage by stage
    queued: list[list[Action]] = field(default_factory=list)
    ringing: bool = False
    lead_playing: bool = False
    slot_of: object = None          # the client whose call slot this PSTN call holds

    # the voice application type whose options (over the prepaid card's) this app reads
    app_type = "prepaid"

    def __post_init__(self) -> None:
        self.settings = {**_defaults(), **_defaults(self.app_type),
                         **(self.caller.app.get("settings") or {})}
        self.started = self._ts()
        who = self.caller.account
        if who and who.get("language") and not self.settings["conf_language_list_preferred"]:
            self.language = str(who["language"])
        elif self.settings["languages"]:
            self.language = str(self.settings["languages"][0])

    # --- helpers ------------------------------------------------------------------------
    def _ts(self) -> Decimal:
        return Decimal(f"{self.now():.3f}")

    def _log(self, step: str, msg: str) -> None:
        log.info("[%s] %s: %s", self.caller.call_id, step, msg)

    def _int(self, name: str) -> int:
        return int(self.settings[name])

    def _ask(self, ask: Ask, on_value: Callable[[str], list[Action]],
             on_fail: Callable[[], list[Action]] | None = None,
             on_key: Callable[[str], list[Action]] | None = None) -> list[Action]:
        self.state, self.ask = ASKING, ask
        self.on_value, self.on_fail, self.on_key = on_value, on_fail or self._goodbye, on_key
        return ask.start()

    def _question(self, prompts: tuple[str, ...], low: int, high: int,
                  attempts: int | None = None, keys: str = "") -> Ask:
        # "then press the pound key" (the destination prompt says so itself)
        if self.settings["confirm_by_pound"] and high > 1 and "enter_destination" not in prompts:
            prompts = prompts + (CONFIRM,)
        return Ask(prompts, min_len=low, max_len=high,
                   timeout=float(self.settings["default_prompt_timeout"]),
                   attempts=attempts or self._int("max_login_attempts"),
                   confirm_by_pound=bool(self.settings["confirm_by_pound"]), keys=keys)

    def _farewell(self, *prompts: str) -> list[Action]:
        self.state, self.ask = FAREWELL, None
        last = () if "locked_out" in prompts else ("goodbye",)  # it says goodbye itself
        return [SetTimer(None), StopPlay(), Play(prompts + last)]

    def _goodbye(self) -> list[Action]:
        return self._farewell()

    def _outcome(self, result: Result) -> list[Action]:
        """Carry out what the current question ended in."""
        if isinstance(result, Failed) and self.on_fail:
            self._log("INPUT", "no valid input after the last attempt")
        return carry_out(result, self.on_value, self.on_key, self.on_fail)

    # --- events -------------------------------------------------------------------------
    def start(self) -> list[Action]:
        """The caller is answered: welcome, the language menu, then authentication."""
        self._log("START", f"ANI {self.caller.ani or '-'} reached access number "
                           f"{self.caller.access_number}")
        actions: list[Action] = []
        if self.settings["play_welcome_message"]:
            actions.append(Play(("welcome",)))
            self._queue(self._language_menu_or_auth())
            return actions
        return self._language_menu_or_auth()

    def on_prompt_done(self) -> list[Action]:
        self.lead_playing = False
        if self.queued:
            return self.queued.pop(0)
        if self.state == FAREWELL:
            return self._hang_up()
        if self.state == ASKING and self.ask is not None:
            return self.ask.on_prompt_done()
        return []

    def on_digit(self, digit: str) -> list[Action]:
        if self.state == ASKING and self.ask is not None:
            if self.queued:  # a key during the welcome message starts the question now
                return [StopPlay()] + self.queued.pop(0)
            return self._outcome(self.ask.on_digit(digit))
        return []

    def on_timer(self, name: str) -> list[Action]:
        if name == PROMPT_TIMER and self.state == ASKING and self.ask is not None:
            return self._outcome(self.ask.on_timeout())
        if name == WARN_TIMER and self.state == BRIDGED:
            return self._warn()
        if name == REAUTH_TIMER and self.state == BRIDGED:
            return [Reauthorize(), SetTimer(self._reauth_every(), REAUTH_TIMER)]
        return []

    def on_toll_reauthorized(self, max_duration: int) -> list[Action]:
        """Kamailio's answer: the call may now last `max_duration` s from its answer."""
        if self.state != BRIDGED or max_duration <= self.ends_at:
            return []
        self._log("REAUTH", f"cap {self.ends_at:.0f} -> {max_duration} s")
        self.ends_at = float(max_duration)
        interval = self._int("disconnection_warning_interval")
        if not interval:
            return []
        elapsed = float(self._ts() - self.connected_at)
        self.warn_at = max(elapsed, self.ends_at - interval)
        return [SetTimer(self.warn_at - elapsed, WARN_TIMER)]

    def _reauth_every(self) -> float:
        return max(1.0, min(REAUTH_EVERY_S, self.ends_at / 2))

    def on_timeout(self) -> list[Action]:
        return self.on_timer(PROMPT_TIMER)

    def on_toll_ringing(self) -> list[Action]:
        """The far end rings: ringback replaces the pre-ring music (after "please wait")."""
        if self.state != ORIGINATING or self.ringing:
            return []
        self.ringing = True
        ringback: list[Action] = [Play(("ringback",), loop=True)]
        if self.lead_playing:
            self.queued = [ringback]
            return []
        self.queued = []
        return [StopPlay()] + ringback

    def on_toll_answered(self, max_duration: int | None = None) -> list[Action]:
        if self.state != ORIGINATING:
            return []
        self.state, self.connected_at, self.queued = BRIDGED, self._ts(), []
        assert self.card is not None
        self.services.mark_called(self.card)
        self._log("BRIDGE", f"{self.dest} answered, {max_duration or 'no'} s authorized")
        actions: list[Action] = [StopPlay(), Bridge()]
        return actions + self._arm_warnings(max_duration)

    def on_toll_ended(self, code: int) -> list[Action]:
        """The outgoing call ended (refused with `code` before answer, or hung up after):
        the caller may dial again while dial attempts remain."""
        if self.state == BRIDGED:
            self.calls.append(OutgoingCall(self.connected_at, self._ts()))
            self._log("HANGUP", f"call to {self.dest} ended")
            stop: list[Action] = [SetTimer(None, WARN_TIMER), SetTimer(None, REAUTH_TIMER),
                                  StopPlay()]
            return stop + self._next_dial(())
        if self.state != ORIGINATING:
            return []
        self.queued = []
        self.calls.append(OutgoingCall(Decimal(0), self._ts()))
        prompt = REFUSAL_PROMPTS.get(code, "unavailable")
        self._log("REFUSED", f"call to {self.dest} answered {code}, playing {prompt}")
        return [StopPlay()] + self._next_dial((prompt,))

    def on_caller_hangup(self) -> list[Action]:
        was = self.state
        if was == DONE:
            return []
        if was == BRIDGED:
            self.calls.append(OutgoingCall(self.connected_at, self._ts()))
        self.state = DONE
        self._log("HANGUP", f"caller hung up while {was}")
        actions: list[Action] = [SetTimer(None), SetTimer(None, WARN_TIMER), StopPlay()]
        if was in (ORIGINATING, BRIDGED):
            actions.append(Hangup("toll"))
        return actions + self._session_xdr("Caller hung up")

    def on_fault(self) -> list[Action]:
        """The server ends the session on a fault: bill what the session used so far."""
        if self.state == DONE:
            return []
        if self.state == BRIDGED:
            self.calls.append(OutgoingCall(self.connected_at, self._ts()))
        self.state = DONE
        return self._session_xdr("Service fault")

    # --- language ---------------------------------------------------------------------
    def _language_menu_or_auth(self) -> list[Action]:
        languages = [str(x) for x in self.settings["languages"]]
        who = self.caller.account
        known = who is not None and who.get("language") and not self.settings[
            "conf_language_list_preferred"]
        if len(languages) < 2 or known:
            return self._authenticate()
        if self.settings["brief_language_announcement"]:
            prompts: tuple[str, ...] = (f"{languages[0]}/select_language_brief",)
        else:
            prompts = tuple(p for n, lang in enumerate(languages, 1)
                            for p in (f"{lang}/for_language", f"{lang}/num_{n}"))
        ask = self._question(prompts, 1, 1, attempts=self._int("max_language_selection_attempts"),
                             keys="".join(str(n) for n in range(1, min(len(languages), 9) + 1)))
        return self._ask(ask, on_value=lambda _: self._language_unknown(),
                         on_key=self._language_chosen, on_fail=self._no_language)

    def _language_chosen(self, digit: str) -> list[Action]:
        self.language = str(self.settings["languages"][int(digit) - 1])
        self.language_chosen = True
        self._log("LANGUAGE", f"caller chose {self.language}")
        return self._authenticate()

    def _language_unknown(self) -> list[Action]:
        assert self.ask is not None
        return self._outcome(self.ask.retry())

    def _no_language(self) -> list[Action]:
        if self.settings["language_auto_select"]:
            self.language = str(self.settings["languages"][0])
            self._log("LANGUAGE", f"none chosen, going on in {self.language}")
            return self._authenticate()
        return self._goodbye()

    # --- authentication ---------------------------------------------------------------
    def _authenticate(self) -> list[Action]:
        """ANI first (when on and it names an account), else the card number; a caller
        number that keyed in too many wrong card numbers lately is turned away."""
        if self.services.failures(self._guess_key()) >= self._int("lockout_failures"):
            self._log("LOCKOUT", f"caller {self.caller.ani or 'anonymous'} is locked out")
            metrics.CARD_LOGINS.labels(prepaid.BY_PIN, "locked").inc()
            return self._farewell("locked_out")
        if self.settings["ani_authentication"] and self.caller.ani:
            self.ani_id = self.services.translate(str(self.settings["ani_translation_rule"]),
                                                  self.caller.ani)
            identity = self.services.identity(self.ani_id)
            if identity is not None:
                self._log("AUTH", f"ANI {self.caller.ani} -> {self.ani_id} is account "
                                  f"{identity.account['id']}")
                if self.settings["use_ani_and_auth_code"]:
                    return self._ask_auth_code(identity.account)
                self.ani_alias = identity.via_alias
                return self._authenticated(identity.account, prepaid.BY_ANI)
            self._log("AUTH", f"ANI {self.caller.ani} -> {self.ani_id} is no account")
        elif self.caller.ani:
            self.ani_id = self.services.translate(str(self.settings["ani_translation_rule"]),
                                                  self.caller.ani)
        return self._ask_card()

    def _ask_auth_code(self, company: Record) -> list[Action]:
        number = str(company.get("associated_number") or "")
        if not number:
            self._log("AUTH", f"account {company['id']} has no associated number")
            return self._ask_card()
        ask = self._question(("enter_code",), self._int("min_auth_code_length"),
                             self._int("max_auth_code_length"))

        def check(code: str) -> list[Action]:
            identity = self.services.identity(f"{number}#{code}")
            if identity is None:
                self._log("AUTH", f"auth code for {number} is wrong")
                return self._wrong(("invalid_code",))
            return self._authenticated(identity.account, prepaid.BY_ANI)
        # codes used up: the card number, when manual authentication is on
        return self._ask(ask, on_value=check, on_fail=self._ask_card)

    def _ask_card(self) -> list[Action]:
        if not self.settings["manual_authentication"]:
            self._log("AUTH", "no ANI match and manual authentication is off")
            return self._farewell("not_authorized")
        ask = self._question(("enter_card",), self._int("min_card_length"),
                             self._int("max_card_length"))
        return self._ask(ask, on_value=self._check_card)

    def _check_card(self, pin: str) -> list[Action]:
        rule = str(self.settings["pin_translation_rule"])
        if rule and self.settings["check_service_password"] != "none":
            pin = self.services.translate(rule, pin)
        identity = self.services.identity(pin)
        if identity is None:
            self._log("AUTH", "card number not valid")
            metrics.CARD_LOGINS.labels(prepaid.BY_PIN, "invalid").inc()
            return self._wrong(("invalid_card",))
        return self._authenticated(identity.account, prepaid.BY_PIN)

    def _retry(self, prompts: tuple[str, ...]) -> list[Action]:
        assert self.ask is not None
        return self._outcome(self.ask.retry(prompts))

    def _guess_key(self) -> str:
        """Whose wrong guesses count together: the caller's number (anonymous callers of
        one access number share one counter)."""
        return f"ani:{self.caller.ani or 'anonymous@' + self.caller.access_number}"

    def _voucher_key(self) -> str:
        """Wrong voucher numbers keyed at this access number, whoever keyed them."""
        return f"voucher@{self.caller.access_number}"

    def _voucher_limit(self) -> int:
        """Wrong voucher numbers an access number takes within lockout_seconds."""
        return VOUCHER_GUESSES_PER_LOCKOUT * self._int("lockout_failures")

    def _wrong(self, prompts: tuple[str, ...]) -> list[Action]:
        """A wrong card number, auth code or password: counted across calls."""
        failures = self.services.record_failure(self._guess_key(), self._int("lockout_seconds"))
        if failures >= self._int("lockout_failures"):
            self._log("LOCKOUT", f"caller {self.caller.ani or 'anonymous'} locked out after "
                                 f"{failures} wrong entries")
            return self._farewell("locked_out")
        return self._retry(prompts)

    def _authenticated(self, account: Record, by: str) -> list[Action]:
        has_password = bool(account.get("service_password"))
        step = prepaid.password_step(str(self.settings["check_service_password"]), by,
                                     has_password)
        if step == prepaid.REFUSE:
            self._log("AUTH", f"account {account['id']} has a service password: PIN refused")
            return self._retry(("invalid_card",)) if self.ask else self._ask_card()
        if step == prepaid.ASK:
            ask = self._question(("enter_password",), self._int("min_password_length"),
                                 self._int("max_password_length"))

            def check(entered: str) -> list[Action]:
                if not prepaid.password_matches(account, entered):
                    self._log("AUTH", f"wrong service password for {account['id']}")
                    return self._wrong(("invalid_password",))
                return self._card_ready(account, by)
            return self._ask(ask, on_value=check)
        return self._card_ready(account, by)

    def _refused(self, card: Record, step: str) -> list[Action] | None:
        """Goodbye when the card (or its customer) is blocked or expired, else None."""
        customer = self.services.customer(int(card.get("customer_id") or 0))
        refusal = check_caller(card, customer or {"blocked": True})
        if refusal is None:
            return None
        self._log(step, f"card {card['id']}: {refusal.reason}")
        return self._farewell("card_expired" if "expired" in refusal.reason else "card_blocked")

    def _no_slot(self, card: Record) -> list[Action] | None:
        """A call in from the PSTN is an external call of the card's client: it holds one
        of the client's call slots (max calls) from login to the session's end, and is let
        go with the voice notification when all are taken (None: it holds one, or needs
        none). A phone of the platform is not an external incoming call."""
        if self.caller.account is not None:
            return None
        customer = self.services.customer(int(card.get("customer_id") or 0)) or {}
        if self.slot_of is not None and self.slot_of != customer.get("id"):
            self.release_slot()  # another card of another client, from the self-care menu
        if self.slot_of is not None:
            return None
        if not self.services.take_slot(customer, self.caller.call_id):
            self._log("POLICY", f"client {customer.get('id')} has its "
                                f"{customer.get('max_calls')} calls already")
            return self._farewell("max_calls_reached")
        self.slot_of = customer.get("id")
        return None

    def release_slot(self) -> None:
        """The session is over (or moved to another client's card): its slot is free."""
        if self.slot_of is not None:
            held, self.slot_of = self.slot_of, None
            self.services.give_back_slot(held, self.caller.call_id)

    def _card_ready(self, account: Record, by: str) -> list[Action]:
        refused = self._refused(account, "AUTH") or self._no_slot(account)
        if refused is not None:
            return refused
        self.card = account
        # the card's language, unless the caller chose one or the app's list is preferred
        if account.get("language") and not self.language_chosen and (
                not self.settings["conf_language_list_preferred"]
                or not self.settings["languages"]):
            self.language = str(account["language"])
        self._log("AUTH", f"card {account['id']} authenticated by {by}")
        metrics.CARD_LOGINS.labels(by, "ok").inc()
        if by == prepaid.BY_PIN and self._may_register():
            return self._offer_registration()
        return self._after_login()

    # --- ANI registration ---------------------------------------------------------------
    def _may_register(self) -> bool:
        return bool(self.settings["auto_registration"] and self.ani_id and self.card
                    and self.services.identity(self.ani_id) is None)

    def _offer_registration(self) -> list[Action]:
        if self.settings["register_without_confirmation"]:
            return self._register() + self._after_login()
        ask = self._question(("register_ani",), 1, 1, keys=REGISTER + SKIP_REGISTER)

        def chosen(key: str) -> list[Action]:
            return (self._register() if key == REGISTER else []) + self._after_login()
        return self._ask(ask, on_value=lambda _: self._retry(()), on_key=chosen,
                         on_fail=self._after_login)

    def _register(self) -> list[Action]:
        assert self.card is not None
        if self.services.register_ani(self.ani_id, str(self.card["id"])):
            self._log("REGISTER", f"ANI {self.ani_id} registered to {self.card['id']}")
            self.ani_alias = self.ani_id
            return [Play(("ani_registered",))]
        self._log("REGISTER", f"ANI {self.ani_id} could not be registered")
        return []

    # --- balance, then dialing ----------------------------------------------------------
    def _after_login(self) -> list[Action]:
        assert self.card is not None
        available, _ = self.services.funds(self.card)
        restrict = self.settings["restrict_low_balance"]
        if restrict == "disconnect" and prepaid.low_balance(available, self._product(self.card)):
            self._log("BALANCE", f"card {self.card['id']} has {available}: disconnecting")
            return self._farewell("insufficient_funds")
        said = self._balance_prompts() if self.settings["announce_balance"] else []
        return self._chain(said, self._dial)

    def _queue(self, actions: list[Action]) -> None:
        if actions:
            self.queued.append(actions)

    def _chain(self, prompts: list[str], then: Callable[[], list[Action]]) -> list[Action]:
        """Play `prompts`, then carry on with `then` (a question barges in on them)."""
        if not prompts:
            return then()
        follow = then()
        if follow and isinstance(follow[-1], Play) and self.state == ASKING:
            first = [a for a in follow if not isinstance(a, Play)]
            played = follow[-1]
            return first + [Play(tuple(prompts) + played.prompts)]
        self._queue(follow)
        return [StopPlay(), Play(tuple(prompts))]

    def _balance_prompts(self) -> list[str]:
        """The balance announcement of credit_balance_announcement (+ credit limit)."""
        assert self.card is not None
        available, balance = self.services.funds(self.card)
        currency = self._currency()
        credit = self.card.get("billing_model") == "credit"
        limit = self.card.get("credit_limit")
        mode = self.settings["credit_balance_announcement"]
        prompts: list[str] = []
        if not credit:
            prompts = ["your_balance_is"] + say.amount(balance or Decimal(0), currency,
                                                       self.language)
        else:
            # funds/balance: "available funds" for prepaid customers (a credit limit of 0
            # or less), the balance for postpaid ones; balance: always the balance
            prepaid_like = limit not in (None, "") and Decimal(str(limit)) <= 0
            funds = mode == "backward_compatibility" or (mode == "funds_balance"
                                                         and prepaid_like)
            if funds and available is not None:
                prompts = ["available_funds_are"] + say.amount(available, currency, self.language)
            else:
                prompts = ["your_balance_is"] + say.amount(balance or Decimal(0), currency,
                                                           self.language)
            if self.settings["announce_credit_limit"] and limit not in (None, ""):
                prompts += ["credit_limit_is"] + say.amount(Decimal(str(limit)), currency,
                                                             self.language)
        self._log("BALANCE", f"announcing {' '.join(prompts)}")
        return prompts

    def _currency(self) -> str:
        assert self.card is not None
        customer = self.services.customer(int(self.card.get("customer_id") or 0)) or {}
        return str(customer.get("currency") or "USD")

    def _dial(self) -> list[Action]:
        """Ask for the destination (or dial the associated number)."""
        assert self.card is not None
        if self.settings["check_associated_number"] and self.card.get("associated_number") \
                and not self.calls:
            return self._destination(str(self.card["associated_number"]))
        self_care = bool(self.settings["self_care_menu"])
        hint = ("self_care_hint",) if self_care and self.settings["announce_self_care_menu"] else ()
        ask = self._question(("enter_destination",) + hint, 1, DESTINATION_DIGITS,
                             attempts=self._int("max_dial_attempts"),
                             keys="#" if self_care else "")
        ask.confirm_by_pound = False  # a number of any length ends with # or the timeout
        return self._ask(ask, on_value=self._destination, on_key=self._self_care)

    def _next_dial(self, prompts: tuple[str, ...]) -> list[Action]:
        if self.dial_attempts >= self._int("max_dial_attempts"):
            return self._farewell(*prompts)
        self.state = ASKING
        return self._chain(list(prompts), self._dial)

    def _destination(self, dialed: str) -> list[Action]:
        assert self.card is not None
        self.dial_attempts += 1
        number = self.services.translate(str(self.settings["destination_translation_rule"]),
                                         dialed)
        self.dest = number
        card = self.services.account(str(self.card["id"])) or self.card  # blocked meanwhile?
        refused = self._refused(card, "DIAL")
        if refused is not None:
            return refused
        self.card = card
        available, _ = self.services.funds(card)
        if self.settings["restrict_low_balance"] == "no_outgoing_calls" and \
                prepaid.low_balance(available, self._product(card)):
            self._log("DIAL", f"card {card['id']} has {available}: busy, no outgoing calls")
            self.state = FAREWELL
            return [SetTimer(None), StopPlay(), Play(("busy_tone",))]
        rate, code = self._rate(card, number)
        if rate is None or rate.forbidden:
            self._log("DIAL", f"{number}: {'forbidden' if rate else 'no rate'}")
            return self._next_dial(("forbidden",) if rate else ("not_found",))
        before = self._int("disconnect_call_before")
        seconds = prepaid.talk_seconds(rate, available, before, self.caller.longest) \
            if is_paid(rate) else None
        if seconds is not None and seconds <= 0:
            self._log("DIAL", f"{number}: {available} buys no time")
            return self._next_dial(("insufficient_funds",))
        self.access_code = code
        prompts: list[str] = []
        if self.settings["announce_time"]:
            prompts = self._time_prompts(card, number, rate, available, before)
        self._log("DIAL", f"{number} under access code {code or '(plain)'}, "
                          f"{seconds if seconds is not None else 'unlimited'} s")
        return self._originate(prompts)

    def _product(self, card: Record) -> Record:
        """The card's product record ({} when it has none)."""
        return self.services.product(int(card.get("product_id") or 0)) or {}

    def _rate(self, card: Record, number: str) -> tuple[Rate | None, str]:
        """The rate of `number` under the first access code the card's product has."""
        product = self._product(card)
        codes = prepaid.outgoing_codes(self.settings, self.caller.access_number,
                                       self.services.first_call(card))
        code = prepaid.choose_code(product, codes)
        if code is None or not number.isdigit():
            return None, ""
        try:
            return find_rate(product, number, self.services.rate, code), code
        except (RateError, KeyError, TypeError, ValueError):
            return None, code

    def _time_prompts(self, card: Record, number: str, rate: Rate,
                      available: Decimal | None, before: int) -> list[str]:
        """"You have five minutes and forty-nine seconds": by the announcement tariff
        when "Use announcement tariff" is on and the product has one."""
        if self.settings["use_announcement_tariff"]:
            product = self._product(card)
            code = prepaid.choose_code(product, prepaid.announcement_codes(
                self.caller.access_number))
            if code is not None:
                announced = find_rate(product, number, self.services.rate, code)
                if announced is not None:
                    rate = announced
        if not is_paid(rate):
            return []
        seconds = prepaid.talk_seconds(rate, available, before, self.caller.longest)
        shown = prepaid.announced_seconds(seconds, str(self.settings["seconds_rounding_mode"]))
        return ["you_have"] + say.duration(shown, self.language,
                                           str(self.settings["seconds_rounding_mode"])) \
            + ["for_this_call"]

    def _originate(self, prompts: list[str]) -> list[Action]:
        assert self.card is not None
        self.state, self.ask = ORIGINATING, None
        self.ringing, self.lead_playing = False, True
        originate: list[Action] = [
            Play(("please_wait",)),
            Originate(str(self.card["id"]), dest=self.dest, access_code=self.access_code,
                      cli=self.caller.ani)]
        if self.settings["play_pre_ring_moh"]:
            self._queue([Play(("music",), loop=True, folder=self._moh_folder())])
        if prompts:  # the time announcement first, then the call is placed
            self.queued.insert(0, originate)
            return [SetTimer(None), StopPlay(), Play(tuple(prompts))]
        quiet: list[Action] = [SetTimer(None), StopPlay()]
        return quiet + originate

    def _moh_folder(self) -> str:
        cls = str(self.settings["moh_class"] or "default")
        return f"moh/{cls}"

    # --- warnings while talking ---------------------------------------------------------
    def _arm_warnings(self, max_duration: int | None) -> list[Action]:
        """The first disconnection warning and, with dynamic reauthorization, the first
        reauthorization of a capped call."""
        if not max_duration:
            return []
        self.ends_at = float(max_duration)
        actions: list[Action] = []
        if self.settings["dynamic_reauthorization"]:
            actions.append(SetTimer(self._reauth_every(), REAUTH_TIMER))
        interval = self._int("disconnection_warning_interval")
        if interval:
            self.warn_at = max(0.0, self.ends_at - interval)
            actions.append(SetTimer(self.warn_at, WARN_TIMER))
        return actions

    def _warn(self) -> list[Action]:
        left = max(0, int(round(self.ends_at - self.warn_at)))
        if self.settings["disconnection_warning_type"] == "voice":
            prompts = tuple(["call_ends_in"] + say.duration(left, self.language))
        else:
            prompts = ("beep",)
        self._log("WARNING", f"{left} s left: {'voice' if len(prompts) > 1 else 'beep'}")
        repeat = self._int("disconnection_warning_repeat")
        actions: list[Action] = [Play(prompts)]
        if repeat and self.warn_at + repeat < self.ends_at:
            self.warn_at += repeat
            actions.append(SetTimer(float(repeat), WARN_TIMER))
        return actions

    # --- self-care ----------------------------------------------------------------------
    def _self_care(self, key: str) -> list[Action]:
        prompts = ["sc_another_card"]
        if self.settings["account_top_up"]:
            prompts.append("sc_voucher")
        if self.settings["allow_ani_deregistration"] and self.ani_alias:
            prompts.append("sc_deregister")
        prompts += ["sc_balance", "sc_back"]
        ask = self._question(tuple(prompts), 1, 1, keys=ANOTHER_CARD + VOUCHER + DEREGISTER
                             + BALANCE + BACK)
        self._log("SELF-CARE", "menu")
        return self._ask(ask, on_value=lambda _: self._retry(()), on_key=self._self_care_key,
                         on_fail=self._dial)

    def _self_care_key(self, key: str) -> list[Action]:
        if key == ANOTHER_CARD:
            self._log("SELF-CARE", "use another card")
            self.card, self.ani_alias = None, ""
            return self._ask_card()
        if key == VOUCHER and self.settings["account_top_up"]:
            return self._ask_voucher()
        if key == DEREGISTER and self.settings["allow_ani_deregistration"] and self.ani_alias:
            assert self.card is not None
            done = self.services.deregister_ani(self.ani_alias, str(self.card["id"]))
            self._log("SELF-CARE", f"ANI {self.ani_alias} deregistered: {done}")
            self.ani_alias = "" if done else self.ani_alias
            return self._chain(["ani_deregistered" if done else "unavailable"], self._dial)
        if key == BALANCE:
            return self._chain(self._balance_prompts(), self._dial)
        return self._dial()

    def _ask_voucher(self) -> list[Action]:
        """Account top-up via voucher: the voucher number, then the new balance. An access
        number that heard too many wrong voucher numbers lately (from any callers: a
        guesser may change caller numbers) takes none until the count expires."""
        if self.services.failures(self._voucher_key()) >= self._voucher_limit():
            self._log("LOCKOUT", f"voucher top-up at {self.caller.access_number} is locked")
            metrics.VOUCHERS.labels("locked").inc()
            return self._chain(["voucher_unavailable"], self._carry_on)
        self._log("SELF-CARE", "voucher top-up")
        ask = self._question(("enter_voucher",), self._int("min_voucher_length"),
                             self._int("max_voucher_length"))
        return self._ask(ask, on_value=self._redeem_voucher, on_fail=self._carry_on)

    def _carry_on(self) -> list[Action]:
        """What follows a top-up or a balance announcement: the next destination (a
        self-care application says goodbye instead)."""
        return self._dial()

    def _redeem_voucher(self, code: str) -> list[Action]:
        """Credit the card (never logging the number); a wrong number counts toward the
        caller's lockout like a wrong card number."""
        assert self.card is not None
        outcome = self.services.redeem_voucher(code, str(self.card["id"]))
        if outcome == prepaid.VOUCHER_UNAVAILABLE:
            self._log("VOUCHER", "top-up unavailable (provisioning database unreachable)")
            metrics.VOUCHERS.labels("unavailable").inc()
            return self._chain(["voucher_unavailable"], self._carry_on)
        if not isinstance(outcome, Decimal):
            self._log("VOUCHER", "voucher number not valid")
            metrics.VOUCHERS.labels("invalid").inc()
            self.services.record_failure(self._voucher_key(), self._int("lockout_seconds"))
            return self._wrong(("invalid_voucher",))
        metrics.VOUCHERS.labels("redeemed").inc()
        self._log("VOUCHER", f"card {self.card['id']} credited {outcome}")
        self.card = self.services.account(str(self.card["id"])) or self.card
        self.ask = None
        return self._chain(["voucher_accepted"] + self._balance_prompts(), self._carry_on)

    # --- the end ------------------------------------------------------------------------
    def _hang_up(self) -> list[Action]:
        self.state = DONE
        actions: list[Action] = [SetTimer(None), SetTimer(None, WARN_TIMER), Hangup("caller")]
        return actions + self._session_xdr("Normal clearing")

    def _session_xdr(self, reason: str) -> list[Action]:
        """The incoming leg's xDR on the card, by the session accounting mode."""
        if self.card is None:
            return []
        charge = prepaid.session_charge(self.settings, self.started, self._ts(), self.calls)
        cli, cld = prepaid.rated_numbers(self.settings, self.caller.ani,
                                         self.caller.access_number)
        return [SessionXdr(account=str(self.card["id"]),
                           customer_id=int(self.card.get("customer_id") or 0), cli=cli,
                           cld=cld, access_code=charge.access_code, seconds=charge.seconds,
                           reason=reason)]


def _defaults(app_type: str = "prepaid") -> dict[str, Any]:
    from provisioning.app_settings import defaults
    return defaults(app_type)
