"""Digit collection, the one way every voice application asks the caller for input.

An `Ask` plays its prompts, takes digits (barging in on the prompt), and ends in one of:

    Got(value)   enough digits: max length reached, `#` pressed (confirm by pound, or any
                 time once min length is reached), or the prompt timeout with at least
                 the min length keyed in
    Key(digit)   a digit of `keys` pressed first (menus, `#` for the self-care menu)
    Failed()     max attempts used up (silence, too short, or the app's own rejections)

Between those it returns the actions to carry out (play, stop, arm the prompt timer). `*`
clears what was keyed in. A value the application rejects (a wrong PIN) is one attempt:
the application calls retry() with the prompts that explain why.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ivr.actions import Action, Play, SetTimer, StopPlay


@dataclass(frozen=True)
class Got:
    value: str


@dataclass(frozen=True)
class Key:
    digit: str


@dataclass(frozen=True)
class Failed:
    pass


Outcome = Got | Key | Failed
Result = Outcome | list[Action]


def carry_out(result: Result, on_value: Callable[[str], list[Action]] | None,
              on_key: Callable[[str], list[Action]] | None,
              on_fail: Callable[[], list[Action]] | None) -> list[Action]:
    """What an application does with a question's outcome: the actions it returned, or
    the handler of Got, Key or Failed."""
    if isinstance(result, list):
        return result
    if isinstance(result, Got) and on_value:
        return on_value(result.value)
    if isinstance(result, Key) and on_key:
        return on_key(result.digit)
    if isinstance(result, Failed) and on_fail:
        return on_fail()
    return []


@dataclass
class Ask:
    prompts: tuple[str, ...]
    min_len: int = 1
    max_len: int = 32
    timeout: float = 3.0
    attempts: int = 3
    confirm_by_pound: bool = False
    keys: str = ""              # single digits answered at once, before any other digit
    digits: str = ""
    tries: int = 0
    playing: bool = False
    retry_prompts: tuple[str, ...] = field(default=())
    files: tuple[str, ...] = ()   # the Play's own files ("file:<i>" among the prompts)

    def start(self) -> list[Action]:
        self.digits, self.playing = "", True
        return [SetTimer(None), Play(self.prompts, files=self.files)]

    def on_prompt_done(self) -> list[Action]:
        """The question was asked: wait `timeout` seconds for a key."""
        self.playing = False
        return [SetTimer(self.timeout)]

    def on_digit(self, digit: str) -> Result:
        barge: list[Action] = [StopPlay()] if self.playing else []
        self.playing = False
        if not self.digits and digit in self.keys:
            return Key(digit)
        if digit == "*":
            self.digits = ""
            return barge + [SetTimer(self.timeout)]
        if digit == "#":
            if not self.digits:
                return barge + [SetTimer(self.timeout)]
            if len(self.digits) < self.min_len:
                return self.retry()
            return self._got()
        if not digit.isdigit():
            return barge + [SetTimer(self.timeout)]
        self.digits += digit
        if len(self.digits) >= self.max_len and not self.confirm_by_pound:
            return self._got()
        if len(self.digits) > self.max_len:  # confirm by pound, but past the longest input
            return self.retry()
        return barge + [SetTimer(self.timeout)]

    def on_timeout(self) -> Result:
        """No key for `timeout` seconds: take what was keyed in, or ask again."""
        if self.playing:
            return []
        if self.digits and len(self.digits) >= self.min_len:
            return self._got()
        return self.retry()

    def retry(self, prompts: tuple[str, ...] = ()) -> Result:
        """One attempt used: ask again (after `prompts`), or Failed when none are left."""
        self.tries += 1
        self.digits = ""
        if self.tries >= self.attempts:
            return Failed()
        self.playing = True
        return [SetTimer(None), StopPlay(), Play(prompts + self.prompts, files=self.files)]

    def _got(self) -> Got:
        value, self.digits = self.digits, ""
        return Got(value)
