"""Follow-me of an account (second-number-service.txt): a call in from the PSTN to a DID
whose answering mode forwards it rings the account's follow-me numbers through the PSTN
gateway, one after the other, each for its own ring timeout. The forwarded leg is an
outgoing call of the DID account, rated and reserved at its rate; the far end sees the DID.

Pure: kemi/forwarding.py carries the decisions out. A follow-me entry is stored as text,
"<number>/<ring timeout in seconds>" (provisioning/validate.py follow_me); an entry
without a timeout rings for DEFAULT_RING_S.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from billing.classify import Decision

DEFAULT_RING_S = 20
MIN_RING_S, MAX_RING_S = 5, 300
# answering modes that forward a call in (the others ring the account's phones)
FORWARD_MODES = frozenset({"forward", "forward_then_voicemail"})
SEQUENTIAL, SIMULTANEOUS = "sequential", "simultaneous"   # follow_me_order
_ENTRY = re.compile(r"(\+?[0-9]{1,32})(?:/([0-9]{1,3}))?")
# a Diversion header's user part: the number the call was forwarded from (RFC 5806)
_DIVERSION_USER = re.compile(r"<?\s*(?:sips?|tel):\+?([0-9]{1,32})[@;>]?")

LOOP = Decision(482, "Loop Detected")
NO_TARGET = Decision(480, "Temporarily Unavailable")


@dataclass(frozen=True)
class Target:
    """One follow-me number and how long it rings before the next is tried."""
    number: str
    ring_s: int


def parse_entry(text: str) -> Target | None:
    """A stored entry, or None when it is not one (skipped, never dialed)."""
    match = _ENTRY.fullmatch(text.strip())
    if match is None:
        return None
    ring = int(match.group(2)) if match.group(2) else DEFAULT_RING_S
    return Target(match.group(1).lstrip("+"), min(max(ring, MIN_RING_S), MAX_RING_S))


def targets(account: Mapping[str, Any]) -> list[Target]:
    """The account's follow-me numbers in order, when its answering mode forwards."""
    if account.get("answering_mode") not in FORWARD_MODES:
        return []
    parsed = (parse_entry(str(entry)) for entry in account.get("follow_me") or ())
    return [target for target in parsed if target is not None]


def rings_together(account: Mapping[str, Any]) -> bool:
    """The account's follow-me numbers ring all at once (follow_me_order simultaneous)."""
    return account.get("follow_me_order") == SIMULTANEOUS


def together(picked: list[tuple[Target, Decision]]) -> tuple[Target, Decision]:
    """Numbers that ring at once as one: they ring for the longest of their timeouts; the
    funds held are the most any of them needs, and the call may last no longer than the
    shortest any of them is authorized for (whichever answers, no call outlasts its
    funds)."""
    ring_s = max(target.ring_s for target, _ in picked)
    held = max(picked, key=lambda p: p[1].reserve or 0)[1]
    caps = [d.max_duration for _, d in picked if d.max_duration]
    return Target(picked[0][0].number, ring_s), replace(
        held, max_duration=min(caps) if caps else held.max_duration)


def diverted_from(header: str) -> set[str]:
    """The numbers a call says it was forwarded from (its Diversion headers, joined)."""
    return {match.group(1) for match in _DIVERSION_USER.finditer(header or "")}


def loops(number: str, on_net: Callable[[str], bool], forwarded_from: set[str]) -> bool:
    """A follow-me number that would bring the call back: a number of this platform (an
    account, alias or access number; the call would arrive again and forward again), or
    one the call was already forwarded from."""
    return on_net(number) or number in forwarded_from
