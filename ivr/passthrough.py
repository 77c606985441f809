"""Pass-through IVR: collect an authorization code, then put the toll call through.

A small state machine. Every handler takes one event and *returns* the actions the
adapter (ivr/server.py) carries out; nothing here touches SIP or media, so every branch
runs in unit tests with a dict-backed directory.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from billing.authid import AuthCodeError, build_auth_id, matches_own_pin
from ivr import metrics
from ivr.actions import Action, Bridge, Hangup, Originate, Play, SetTimer, StopPlay

log = logging.getLogger("ivr.passthrough")

# the seed's defaults for the options the pass-through IVR reads
DEFAULTS: dict[str, object] = {
    "authorize_paid_calls": True,
    "auth_code_as_account_id": False,
    "use_associated_number": False,
    "min_auth_code_length": 4,
    "max_auth_code_length": 4,
    "max_login_attempts": 3,
    "confirm_by_pound": False,
    "default_prompt_timeout": 3,
    "brand_prompts": "",
    "lockout_failures": 5,
    "lockout_seconds": 300,
}

# a refused toll leg is explained to the caller with the prompt of its SIP code
REFUSAL_PROMPTS = {402: "insufficient_funds", 403: "forbidden", 404: "not_found",
                   486: "busy", 600: "busy", 480: "unavailable", 503: "unavailable"}


def app_settings(app: Mapping[str, Any]) -> dict[str, Any]:
    """The application's settings over the seed's defaults."""
    return {**DEFAULTS, **(app.get("settings") or {})}


def refusal_prompt(code: int) -> str:
    return REFUSAL_PROMPTS.get(code, "unavailable")




class Directory(Protocol):
    """The lookups the application needs (tollgate.directory.Directory in production)."""

    def account(self, account_id: str) -> Mapping[str, Any] | None: ...
    def alias(self, alias_id: str) -> Mapping[str, Any] | None: ...
    def failures(self, account_id: str) -> int: ...
    def record_failure(self, account_id: str, ttl: int) -> int: ...


@dataclass
class Caller:
    """Who called the IVR, as the signed headers and Redis tell."""
    call_id: str
    account: Mapping[str, Any]
    app: Mapping[str, Any]
    dest: str
    session: str


# states
COLLECTING = "collecting"   # prompting for / reading the code
ORIGINATING = "originating"  # toll leg sent, not answered yet
BRIDGED = "bridged"
FAREWELL = "farewell"       # playing a last prompt, then hang up
DONE = "done"


@dataclass
class PassThrough:
    caller: Caller
    directory: Directory
    state: str = COLLECTING
    digits: str = ""
    attempts: int = 0
    auth_id: str = ""
    settings: dict = field(init=False)

    def __post_init__(self) -> None:
        self.settings = app_settings(self.caller.app)

    def _log(self, step: str, msg: str) -> None:
        log.info("[%s] %s: %s", self.caller.call_id, step, msg)

    def _int(self, name: str) -> int:
        return int(self.settings[name])  # type: ignore[call-overload]

    def _farewell(self, prompt: str) -> list[Action]:
        self.state = FAREWELL
        return [SetTimer(None), Play((prompt,))]

    def start(self) -> list[Action]:
        """The call is answered: greet, or turn away a locked-out account."""
        account = self.caller.account["id"]
        if self.directory.failures(account) >= self._int("lockout_failures"):
            self._log("LOCKOUT", f"account {account} is locked out")
            metrics.CODE_ATTEMPTS.labels("locked").inc()
            return self._farewell("locked_out")
        self._log("PROMPT", f"account {account} dialed {self.caller.dest}, asking for the code")
        return [Play(("enter_code",))]

    def on_prompt_done(self) -> list[Action]:
        if self.state == FAREWELL:
            self.state = DONE
            return [Hangup("caller")]
        if self.state == COLLECTING:
            return [SetTimer(self._timeout())]
        return []

    def _timeout(self) -> float:
        return float(self.settings["default_prompt_timeout"])  # type: ignore[arg-type]

    def on_digit(self, digit: str) -> list[Action]:
        """One DTMF digit (RFC 4733 or SIP INFO); digits barge in on the prompt."""
        if self.state != COLLECTING:
            return []
        barge: list[Action] = [StopPlay()] if not self.digits else []
        if digit == "#" and self.settings["confirm_by_pound"]:
            return barge + self._submit()
        if digit == "*":
            self.digits = ""
            return barge + [SetTimer(self._timeout())]
        self.digits += digit
        done = len(self.digits) >= self._int("max_auth_code_length")
        if done and not self.settings["confirm_by_pound"]:
            return barge + self._submit()
        return barge + [SetTimer(self._timeout())]

    def on_timeout(self) -> list[Action]:
        """No digit for default_prompt_timeout seconds."""
        if self.state != COLLECTING:
            return []
        if len(self.digits) >= self._int("min_auth_code_length"):
            return self._submit()
        self._log("TIMEOUT", f"{len(self.digits)} digits before the timeout")
        metrics.CODE_ATTEMPTS.labels("timeout").inc()
        self.digits = ""
        return self._retry(("enter_code",))

    def _retry(self, prompts: tuple[str, ...]) -> list[Action]:
        self.attempts += 1
        if self.attempts >= self._int("max_login_attempts"):
            self._log("GOODBYE", f"{self.attempts} failed attempts")
            return self._farewell("goodbye")
        return [SetTimer(None), Play(prompts)]

    def _submit(self) -> list[Action]:
        code, self.digits = self.digits, ""
        auth_id = self._check(code)
        if auth_id:
            return self._originate(auth_id)
        return self._wrong_code()

    def _check(self, code: str) -> str:
        """The auth ID to send for `code`, or "" when the code is wrong.

        An auth ID that names an account must name one of the caller's customer (an
        alias or account of another tenant is just a wrong code); a bare PIN must be the
        caller's own service password, and then the caller pays.
        """
        try:
            auth = build_auth_id(self.caller.account, code, self.settings)
        except AuthCodeError:
            return ""
        if not auth.is_account_id:
            return self.caller.account["id"] if matches_own_pin(self.caller.account, auth) else ""
        return auth.value if self._same_customer(auth.value) else ""

    def _same_customer(self, auth_id: str) -> bool:
        alias = self.directory.alias(auth_id)
        owner = self.directory.account(alias["account_id"] if alias else auth_id)
        return (owner is not None
                and owner.get("customer_id") == self.caller.account.get("customer_id"))

    def _wrong_code(self) -> list[Action]:
        account = self.caller.account["id"]
        failures = self.directory.record_failure(account, self._int("lockout_seconds"))
        metrics.CODE_ATTEMPTS.labels("invalid").inc()
        self._log("CODE", f"invalid code, {failures} recent failures of account {account}")
        if failures >= self._int("lockout_failures"):
            self._log("LOCKOUT", f"account {account} locked out")
            return self._farewell("locked_out")
        return self._retry(("invalid_code", "enter_code"))

    def _originate(self, auth_id: str) -> list[Action]:
        metrics.CODE_ATTEMPTS.labels("valid").inc()
        self._log("CODE", f"valid, auth ID {auth_id}")
        self.state, self.auth_id = ORIGINATING, auth_id
        return [SetTimer(None), Play(("please_wait",)), Originate(auth_id)]

    def on_toll_answered(self) -> list[Action]:
        if self.state != ORIGINATING:
            return []
        metrics.TOLL_LEGS.labels("200").inc()
        self.state = BRIDGED
        self._log("BRIDGE", f"toll leg to {self.caller.dest} answered")
        return [StopPlay(), Bridge()]

    def on_toll_ended(self, code: int) -> list[Action]:
        """The toll leg ended: refused (final `code`) before answer, or hung up after."""
        if self.state == BRIDGED:
            self.state = DONE
            self._log("HANGUP", "toll leg hung up")
            return [Hangup("caller")]
        if self.state != ORIGINATING:
            return []
        metrics.TOLL_LEGS.labels(str(code)).inc()
        prompt = refusal_prompt(code)
        self._log("REFUSED", f"toll leg answered {code}, playing {prompt}")
        return [StopPlay()] + self._farewell(prompt)

    def on_caller_hangup(self) -> list[Action]:
        was = self.state
        self.state = DONE
        self._log("HANGUP", f"caller hung up while {was}")
        if was in (ORIGINATING, BRIDGED):
            return [SetTimer(None), StopPlay(), Hangup("toll")]
        return [SetTimer(None), StopPlay()]
