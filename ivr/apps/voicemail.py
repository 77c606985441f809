"""Voicemail (second-number-service.txt): leaving a message, and the mailbox.

`Deposit` answers a call that nobody took (follow-me then voicemail, voicemail only):
the owner's greeting (recorded, or the default one), a beep, the caller's message until
`#`, silence or the mailbox's longest message; the message is stored with its caller,
time and length. A caller who hangs up before the beep leaves nothing.

`Mailbox` is voicemail access: the owner reached by ANI (their mobile, through its @pstn
alias), from their own phones (*98), or by anyone at a voicemail access number (mailbox
number and password). It announces new and saved messages, plays them with caller and
age, lets the owner repeat, save, delete, skip, record the greeting, change the password,
and make an outgoing call billed to the mailbox's account with its number as the CLI.

State machines like ivr/apps/prepaid.py: events in, actions (ivr/actions.py) out; the
store (ivr/mailboxes.py over provisioning/voicemail.py) is the only thing they touch.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from billing import internal
from ivr import say
from ivr.actions import (
    Action,
    Bridge,
    Hangup,
    Originate,
    Play,
    Record,
    SetTimer,
    StopPlay,
    StopRecord,
    file_prompt,
)
from ivr.collect import Ask, Result, carry_out
from tollgate.directory import Record as Account

log = logging.getLogger("ivr.voicemail")

# the applications Kamailio names in the signed X-TG-App (never an operator's app id)
DEPOSIT_APP = internal.APP_VOICEMAIL_DEPOSIT
ACCESS_APP = internal.APP_VOICEMAIL_ACCESS
PHONE_APP = internal.APP_VOICEMAIL_PHONE

MIN_MESSAGE_S = 1          # shorter than this is no message (a hang-up at the beep)
GREETING_MAX_S = 60
SILENCE_S = 5.0            # a message ends after this much silence
PIN_MIN, PIN_MAX = 4, 16
MAILBOX_DIGITS = 32
DESTINATION_DIGITS = 32
PROMPT_TIMEOUT_S = 5.0
LOGIN_ATTEMPTS = 3
LOCKOUT_FAILURES = 5       # wrong passwords in a row before a mailbox refuses logins
LOCKOUT_S = 3600           # for this long
# main menu keys
NEW, SAVED, GREETING, PASSWORD, CALL, EXIT = "1", "2", "3", "4", "5", "*"
# message menu keys
REPEAT, SAVE, DELETE, SKIP, NEXT, BACK = "1", "2", "3", "4", "#", "*"
# prompts of a refused outgoing call, by its final SIP code
REFUSAL_PROMPTS = {402: "insufficient_funds", 403: "forbidden", 404: "not_found",
                   486: "busy", 600: "busy", 480: "unavailable", 503: "unavailable"}
# languages that say "ago" after the age ("received five minutes ago"); the others say
# it before, inside vm_received ("recibido hace ...")
AGO_AFTER = frozenset({"en"})


@dataclass(frozen=True)
class Message:
    """One stored message, as the store lists it."""
    id: int
    caller: str
    received_at: datetime
    duration: int
    heard: bool
    path: Path


class Store(Protocol):
    """What the voicemail applications read and write (ivr.mailboxes.Mailboxes)."""

    def account(self, account_id: str) -> Account | None: ...
    def pin_required(self, account_id: str) -> bool: ...
    def max_seconds(self, account_id: str) -> int: ...
    def is_full(self, account_id: str) -> bool: ...
    def recording_path(self, account_id: str, key: str) -> Path: ...
    def greeting_path(self, account_id: str) -> Path: ...
    def deposit(self, account_id: str, key: str, caller: str, seconds: int,
                path: Path) -> None: ...
    def discard(self, path: Path) -> None: ...
    def messages(self, account_id: str, heard: bool) -> list[Message]: ...
    def counts(self, account_id: str) -> tuple[int, int]: ...
    def mark_heard(self, message_id: int, account_id: str) -> bool: ...
    def delete(self, message_id: int, account_id: str) -> bool: ...
    def save_greeting(self, account_id: str, recorded: Path) -> bool: ...
    def set_password(self, account_id: str, password: str) -> bool: ...
    def notify(self, account_id: str) -> None: ...
    def failures(self, key: str) -> int: ...
    def record_failure(self, key: str) -> int: ...


# Deposit states
GREETING_PLAYING, BEEPING, RECORDING, FAREWELL, DONE = (
    "greeting", "beep", "recording", "farewell", "done")


@dataclass
class Deposit:
    """A caller leaves a message in `owner`'s mailbox."""
    call_id: str
    owner: str            # the mailbox's account
    caller: str           # the caller's number ('' anonymous)
    store: Store
    language: str = say.LANGUAGES[0]
    state: str = GREETING_PLAYING
    path: Path | None = None

    def _log(self, step: str, msg: str) -> None:
        log.info("[%s] %s: %s", self.call_id, step, msg)

    def start(self) -> list[Action]:
        if self.store.is_full(self.owner):
            self._log("VOICEMAIL", f"mailbox {self.owner} is full")
            return self._farewell("vm_mailbox_full")
        self._log("VOICEMAIL", f"{self.caller or 'anonymous'} may leave {self.owner} a message")
        greeting = self.store.greeting_path(self.owner)
        if greeting.is_file():
            return [Play((file_prompt(0),), files=(str(greeting),))]
        return [Play(("vm_not_available",))]

    def on_prompt_done(self) -> list[Action]:
        if self.state == GREETING_PLAYING:
            self.state = BEEPING
            return [Play(("beep",))]
        if self.state == BEEPING:
            self.state = RECORDING
            self.path = self.store.recording_path(self.owner, self.call_id)
            return [Record(str(self.path), self.store.max_seconds(self.owner), SILENCE_S)]
        if self.state == FAREWELL:
            self.state = DONE
            return [Hangup("caller")]
        return []

    def on_digit(self, digit: str) -> list[Action]:
        if digit != "#":
            return []
        if self.state == GREETING_PLAYING:  # skip the greeting
            self.state = BEEPING
            return [StopPlay(), Play(("beep",))]
        if self.state == RECORDING:
            return [StopRecord()]
        return []

    def on_recorded(self, seconds: int, why: str) -> list[Action]:
        if self.state != RECORDING or self.path is None:
            return []
        hung_up = why == "hangup"
        self.state = DONE if hung_up else FAREWELL
        if seconds < MIN_MESSAGE_S:
            self.store.discard(self.path)
            self._log("VOICEMAIL", f"nothing recorded ({why})")
            return [] if hung_up else [Play(("goodbye",))]
        self.store.deposit(self.owner, self.call_id, self.caller, seconds, self.path)
        self._log("VOICEMAIL", f"{seconds} s message for {self.owner} ({why})")
        return [] if hung_up else [Play(("vm_message_saved", "goodbye"))]

    def on_timer(self, name: str) -> list[Action]:
        return []

    def on_caller_hangup(self) -> list[Action]:
        if self.state != RECORDING:  # before the beep: no message
            self.state = DONE
        return []

    def on_fault(self) -> list[Action]:
        return []

    def _farewell(self, *prompts: str) -> list[Action]:
        self.state = FAREWELL
        return [Play((*prompts, "goodbye"))]


# Mailbox states
ASKING, LISTENING, RECORDING_GREETING, ORIGINATING, BRIDGED = (
    "asking", "listening", "recording_greeting", "originating", "bridged")


@dataclass
class Mailbox:
    """Voicemail access. `owner` is the mailbox when Kamailio knows it (ANI, *98), ''
    at a voicemail access number; `trusted` skips the password (the owner's own phone,
    authenticated by Kamailio, or an ANI whose mailbox does not ask for it)."""
    call_id: str
    owner: str
    ani: str
    store: Store
    trusted: bool = False
    # the password was keyed (or the owner's own phone called): a caller known only by
    # the ANI it presents (which the PSTN does not vouch for) keys it before calling out
    verified: bool = False
    language: str = say.LANGUAGES[0]
    allow_calls: bool = True    # the voicemail app's allow_outgoing_calls
    now: Callable[[], float] = time.time
    state: str = ASKING
    ask: Ask | None = None
    on_value: Callable[[str], list[Action]] | None = None
    on_key: Callable[[str], list[Action]] | None = None
    on_fail: Callable[[], list[Action]] | None = None
    queue: list[Message] = field(default_factory=list)
    index: int = 0
    changed: bool = False       # a message was heard or deleted: MWI when the session ends
    greeting_path: Path | None = None
    dest: str = ""

    def _log(self, step: str, msg: str) -> None:
        log.info("[%s] %s: %s", self.call_id, step, msg)

    # --- questions ----------------------------------------------------------------------
    def _ask(self, ask: Ask, on_value: Callable[[str], list[Action]] | None = None,
             on_key: Callable[[str], list[Action]] | None = None,
             on_fail: Callable[[], list[Action]] | None = None) -> list[Action]:
        self.state, self.ask = ASKING, ask
        self.on_value, self.on_key = on_value, on_key
        self.on_fail = on_fail or self._goodbye
        return ask.start()

    def _menu(self, prompts: tuple[str, ...], keys: str, on_key: Callable[[str], list[Action]],
              files: tuple[str, ...] = ()) -> list[Action]:
        ask = Ask(prompts, min_len=1, max_len=1, timeout=PROMPT_TIMEOUT_S,
                  attempts=LOGIN_ATTEMPTS, keys=keys, files=files)
        # a key outside the menu is one wasted attempt, as silence is
        return self._ask(ask, on_value=lambda _: self._outcome(ask.retry()), on_key=on_key)

    def _outcome(self, result: Result) -> list[Action]:
        return carry_out(result, self.on_value, self.on_key, self.on_fail)

    def _goodbye(self, *prompts: str) -> list[Action]:
        self.state, self.ask = FAREWELL, None
        last = () if "locked_out" in prompts else ("goodbye",)  # it says goodbye itself
        return [SetTimer(None), StopPlay(), Play((*prompts, *last))]

    # --- events -------------------------------------------------------------------------
    def start(self) -> list[Action]:
        if not self.owner:
            self._log("MAILBOX", f"ANI {self.ani or '-'} at the voicemail access number")
            return self._ask(Ask(("vm_enter_mailbox",), min_len=1, max_len=MAILBOX_DIGITS,
                                 timeout=PROMPT_TIMEOUT_S, attempts=LOGIN_ATTEMPTS,
                                 confirm_by_pound=True), on_value=self._mailbox_number)
        if self.trusted:
            self._log("MAILBOX", f"{self.owner} by its own phone or ANI")
            return self._welcome()
        return self._ask_password()

    def on_prompt_done(self) -> list[Action]:
        if self.state == FAREWELL:
            self.state = DONE
            return [Hangup("caller")]
        if self.state == ASKING and self.ask is not None:
            return self.ask.on_prompt_done()
        if self.state == LISTENING:  # a refusal or notice was said: back to the menu
            return self._main_menu()
        if self.state == RECORDING_GREETING and self.greeting_path is None:
            self.greeting_path = self.store.recording_path(self.owner, f"greeting-{self.call_id}")
            return [Record(str(self.greeting_path), GREETING_MAX_S, SILENCE_S)]
        return []

    def on_digit(self, digit: str) -> list[Action]:
        if self.state == ASKING and self.ask is not None:
            return self._outcome(self.ask.on_digit(digit))
        if self.state == RECORDING_GREETING and digit == "#":
            if self.greeting_path is None:  # still the instructions: start at once
                return [StopPlay()] + self.on_prompt_done()
            return [StopRecord()]
        return []

    def on_timer(self, name: str) -> list[Action]:
        if self.state == ASKING and self.ask is not None:
            return self._outcome(self.ask.on_timeout())
        return []

    def on_recorded(self, seconds: int, why: str) -> list[Action]:
        if self.state != RECORDING_GREETING or self.greeting_path is None:
            return []
        recorded, self.greeting_path = self.greeting_path, None
        if why == "hangup" or seconds < MIN_MESSAGE_S:
            self.store.discard(recorded)
            return [] if why == "hangup" else self._main_menu()
        saved = self.store.save_greeting(self.owner, recorded)
        self._log("MAILBOX", f"greeting of {seconds} s {'saved' if saved else 'NOT saved'}")
        self.state = LISTENING
        return [Play(("vm_greeting_saved" if saved else "unavailable",))]

    def on_caller_hangup(self) -> list[Action]:
        actions: list[Action] = [Hangup("toll")] if self.state in (ORIGINATING, BRIDGED) else []
        if self.state != RECORDING_GREETING or self.greeting_path is None:
            self.state = DONE  # a greeting being recorded learns it was cut (on_recorded)
        self._notify()
        return actions

    def on_fault(self) -> list[Action]:
        return []

    # --- the outgoing call --------------------------------------------------------------
    def on_toll_ringing(self) -> list[Action]:
        if self.state != ORIGINATING:
            return []
        return [StopPlay(), Play(("ringback",), loop=True)]

    def on_toll_answered(self, max_duration: int | None = None) -> list[Action]:
        if self.state != ORIGINATING:
            return []
        self.state = BRIDGED
        self._log("BRIDGE", f"{self.dest} answered, {max_duration or 'no'} s authorized")
        return [StopPlay(), Bridge()]

    def on_toll_ended(self, code: int) -> list[Action]:
        if self.state == BRIDGED:
            self._log("HANGUP", f"call to {self.dest} ended")
            return [StopPlay()] + self._main_menu()
        if self.state != ORIGINATING:
            return []
        self._log("ORIGINATE", f"{self.dest} refused: {code}")
        self.state = LISTENING
        return [StopPlay(), Play((REFUSAL_PROMPTS.get(code, "unavailable"),))]

    # --- login --------------------------------------------------------------------------
    def _mailbox_number(self, number: str) -> list[Action]:
        account = self.store.account(number)
        if account is None or self._locked(number):
            # one answer for unknown and locked: a guesser learns nothing
            return self._ask_password(unknown=number)
        self.owner = str(account["id"])
        return self._ask_password()

    def _ask_password(self, unknown: str = "") -> list[Action]:
        ask = Ask(("enter_password",), min_len=1, max_len=PIN_MAX, timeout=PROMPT_TIMEOUT_S,
                  attempts=LOGIN_ATTEMPTS, confirm_by_pound=True)
        return self._ask(ask, on_value=lambda pin: self._password(ask, pin, unknown))

    def _password(self, ask: Ask, pin: str, unknown: str) -> list[Action]:
        account = None if unknown else self.store.account(self.owner)
        expected = str((account or {}).get("service_password") or "")
        key = f"vm:{unknown or self.owner}"
        if account is not None and expected and pin == expected and not self._locked(key[3:]):
            self._log("MAILBOX", f"{self.owner} logged in")
            self.verified = True
            return self._welcome()
        failures = self.store.record_failure(key)
        self._log("MAILBOX", f"wrong password for {unknown or self.owner} ({failures} in a row)")
        return self._outcome(ask.retry(("invalid_password",)))

    def _verify_then_call(self) -> list[Action]:
        """A caller trusted by ANI alone calls out only after the service password: a
        spoofed caller ID must not be a free line to anywhere on the owner's account."""
        account = self.store.account(self.owner)
        if not (account or {}).get("service_password") or self._locked(self.owner):
            self._log("MAILBOX", f"{self.owner}: no outgoing call without the password")
            return self._main_menu(("no_permission",))
        ask = Ask(("enter_password",), min_len=1, max_len=PIN_MAX, timeout=PROMPT_TIMEOUT_S,
                  attempts=LOGIN_ATTEMPTS, confirm_by_pound=True)

        def check(pin: str) -> list[Action]:
            if pin == str((self.store.account(self.owner) or {}).get("service_password")):
                self.verified = True
                return self._main_key(CALL)
            failures = self.store.record_failure(f"vm:{self.owner}")
            self._log("MAILBOX", f"wrong password for {self.owner} ({failures} in a row)")
            if failures >= LOCKOUT_FAILURES:
                return self._goodbye("locked_out")
            return self._outcome(ask.retry(("invalid_password",)))
        return self._ask(ask, on_value=check, on_fail=self._main_menu)

    def _locked(self, mailbox: str) -> bool:
        return self.store.failures(f"vm:{mailbox}") >= LOCKOUT_FAILURES

    def _welcome(self) -> list[Action]:
        new, saved = self.store.counts(self.owner)
        self._log("MAILBOX", f"{self.owner}: {new} new, {saved} saved")
        lang = self.language
        counts = ("vm_you_have", *say.number(new, lang),
                  "vm_new_message" if new == 1 else "vm_new_messages", "vm_and",
                  *say.number(saved, lang),
                  "vm_saved_message" if saved == 1 else "vm_saved_messages")
        return self._main_menu(counts)

    # --- menus --------------------------------------------------------------------------
    def _main_menu(self, lead: tuple[str, ...] = ()) -> list[Action]:
        keys = NEW + SAVED + GREETING + PASSWORD + (CALL if self.allow_calls else "") + EXIT
        menu = "vm_main_menu" if self.allow_calls else "vm_main_menu_no_calls"
        return self._menu((*lead, menu), keys, self._main_key)

    def _main_key(self, key: str) -> list[Action]:
        if key in (NEW, SAVED):
            self.queue = self.store.messages(self.owner, heard=key == SAVED)
            self.index = 0
            if not self.queue:
                return self._main_menu(("vm_no_messages",))
            return self._play_message()
        if key == GREETING:
            self.state, self.ask, self.greeting_path = RECORDING_GREETING, None, None
            return [SetTimer(None), Play(("vm_record_greeting", "beep"))]
        if key == PASSWORD:
            ask = Ask(("vm_enter_new_password",), min_len=PIN_MIN, max_len=PIN_MAX,
                      timeout=PROMPT_TIMEOUT_S, attempts=LOGIN_ATTEMPTS, confirm_by_pound=True)
            return self._ask(ask, on_value=self._new_password, on_fail=self._main_menu)
        if key == CALL and not self.verified:
            return self._verify_then_call()
        if key == CALL:
            ask = Ask(("enter_destination",), min_len=1, max_len=DESTINATION_DIGITS,
                      timeout=PROMPT_TIMEOUT_S, attempts=LOGIN_ATTEMPTS, confirm_by_pound=True)
            return self._ask(ask, on_value=self._call, on_fail=self._main_menu)
        return self._goodbye()

    def _play_message(self) -> list[Action]:
        message = self.queue[self.index]
        lang = self.language
        number = message.caller.removeprefix("+")
        caller = say.digits(number, lang) if number.isdigit() else ["vm_unknown_caller"]
        age = max(0, int(self.now() - message.received_at.timestamp()))
        age = age // 3600 * 3600 if age >= 3600 else -(-age // 60) * 60
        ago = ("vm_ago",) if lang in AGO_AFTER else ()
        prompts = ("vm_message", *say.number(self.index + 1, lang), "vm_from", *caller,
                   "vm_received", *say.duration(age, lang), *ago, file_prompt(0),
                   "vm_message_menu")
        return self._menu(prompts, REPEAT + SAVE + DELETE + SKIP + NEXT + BACK,
                          self._message_key, files=(str(message.path),))

    def _message_key(self, key: str) -> list[Action]:
        message = self.queue[self.index]
        if key == REPEAT:
            return self._play_message()
        if key == BACK:
            return self._main_menu()
        lead: tuple[str, ...] = ()
        if key == DELETE:
            if self.store.delete(message.id, self.owner):
                lead, self.changed = ("vm_deleted",), True
        elif key in (SAVE, NEXT) and not message.heard:
            self.changed = self.store.mark_heard(message.id, self.owner) or self.changed
            lead = ("vm_saved",) if key == SAVE else ()
        self.index += 1
        if self.index >= len(self.queue):
            self._notify()
            return self._main_menu((*lead, "vm_no_more_messages"))
        stop: list[Action] = [SetTimer(None), StopPlay()]
        return stop + self._with_lead(lead, self._play_message())

    @staticmethod
    def _with_lead(lead: tuple[str, ...], actions: list[Action]) -> list[Action]:
        """Say `lead` ("message deleted") before the next message's own prompts."""
        if not lead:
            return actions
        led: list[Action] = []
        for action in actions:
            if isinstance(action, Play):
                action = Play((*lead, *action.prompts), files=action.files)
            led.append(action)
        return led

    def _new_password(self, pin: str) -> list[Action]:
        done = self.store.set_password(self.owner, pin)
        self._log("MAILBOX", f"password of {self.owner} {'changed' if done else 'NOT changed'}")
        return self._main_menu(("vm_password_changed" if done else "unavailable",))

    def _call(self, number: str) -> list[Action]:
        self.dest, self.state, self.ask = number, ORIGINATING, None
        self._log("ORIGINATE", f"{self.owner} calls {number}")
        return [SetTimer(None), StopPlay(), Play(("please_wait",)),
                Originate(auth_id=self.owner, dest=number, cli=self.owner)]

    def _notify(self) -> None:
        if self.changed and self.owner:
            self.changed = False
            self.store.notify(self.owner)

