"""What a voice application asks the media server to do: the actions its handlers return.

Applications (ivr/passthrough.py, ivr/apps/) never touch SIP or media; ivr/server.py
carries these out on the caller's leg and the outgoing (toll) leg.
"""
from __future__ import annotations

from dataclasses import dataclass

PROMPT_TIMER = "prompt"   # the digit-collection timer (on_timeout)


@dataclass(frozen=True)
class Play:
    """Play prompts to the caller one after another; on_prompt_done when the last ends.
    loop: play them again and again until StopPlay (music on hold, ringback)."""
    prompts: tuple[str, ...]
    loop: bool = False
    folder: str = ""   # "moh/<class>": the prompts are files of a music-on-hold class
    # WAV files of the platform's own (a voicemail message, a greeting), played where they
    # stand in `prompts` as "file:<index>" (ivr.actions.file_prompt)
    files: tuple[str, ...] = ()


def file_prompt(index: int) -> str:
    """The place of Play.files[index] among a Play's prompts."""
    return f"file:{index}"


@dataclass(frozen=True)
class StopPlay:
    pass


@dataclass(frozen=True)
class Record:
    """Record the caller into the WAV file `path` (8 kHz mono 16-bit, as the prompts are)
    until StopRecord, `max_seconds`, or `silence_seconds` of silence; on_recorded(seconds,
    why) follows with the length kept (trailing silence cut) and why it ended: "stopped",
    "max_length", "silence" or "hangup"."""
    path: str
    max_seconds: int
    silence_seconds: float = 5.0


@dataclass(frozen=True)
class StopRecord:
    pass


@dataclass(frozen=True)
class SetTimer:
    """Arm (or with None cancel) a named timer; it fires on_timer(name) once."""
    seconds: float | None
    name: str = PROMPT_TIMER


@dataclass(frozen=True)
class Originate:
    """Place the outgoing leg through Kamailio, signed: billed to `auth_id`, to `dest`
    (default: the number the caller dialed), rated by `access_code`, showing `cli`."""
    auth_id: str
    dest: str = ""
    access_code: str = ""
    cli: str = ""


@dataclass(frozen=True)
class Bridge:
    pass


@dataclass(frozen=True)
class Hangup:
    """End a leg ("caller" or "toll"); a caller leg not answered yet (early media) gets
    the final response `code` `reason`, an answered one a BYE."""
    leg: str
    code: int = 0
    reason: str = ""


@dataclass(frozen=True)
class Reauthorize:
    """Ask Kamailio, inside the connected outgoing call, whether it may now last longer
    (dynamic reauthorization); the answer comes as on_toll_reauthorized(max_duration)."""


@dataclass(frozen=True)
class Rerate:
    """Have Kamailio rate the caller's leg (a call-back's leg A, which the IVR placed)
    under `access_code` from now on ("Special charge if LegB fails": CALLBACK_FAIL)."""
    access_code: str


@dataclass(frozen=True)
class SessionXdr:
    """Bill the caller's leg (the call to the IVR) to `account`: `seconds` ending now,
    under `access_code`; an xDR is written even for 0 seconds (billed nothing)."""
    account: str
    customer_id: int
    cli: str
    cld: str
    access_code: str
    seconds: int
    reason: str


Action = (Play | StopPlay | SetTimer | Originate | Bridge | Hangup | Reauthorize | SessionXdr
          | Record | StopRecord | Rerate)
