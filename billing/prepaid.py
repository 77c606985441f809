"""The prepaid card's billing rules (voice-application-settings.txt, "Prepaid card calling").

Which access code rates a leg, how the call to the access number (the incoming session) is
charged in each of the four accounting modes, when the service password is asked, what a
low balance is, and how much talk time funds buy. Pure functions over records and settings:
the IVR's prepaid application and the tests call them; Kamailio rates the toll leg with the
access code chosen here.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from billing.classify import PLAIN, tariff_for
from billing.rating import MAX_CALL_SECONDS, Rate, affordable_seconds

# the seed's fixed access codes
FIRSTCALL = "FIRSTCALL"
ANSWER = "ACCESS_CODE.ANSWER"            # all session time, some outgoing call connected
ANSWER_FAIL = "ACCESS_CODE.ANSWER.FAIL"  # all session time, every outgoing call failed
ANNOUNCE = "ANNOUNCE+"                   # + the access number: the announcement tariff
ANNOUNCE_DNIS = "ANNOUNCE+DNIS"          # the seed's literal spelling, tried second

# incoming session accounting modes (app_settings.PREPAID "incoming_session_accounting")
NO_CHARGES = "no_charges"
ALL_SESSION_TIME = "all_session_time"
OUTGOING_CALLS_ONLY = "outgoing_calls_only"
ALL_UNLESS_ALL_FAIL = "all_session_time_unless_all_fail"

# the product's "rounding amount" below which an account counts as out of funds, when a
# product record does not say (products.rounding_amount, default 0.01)
ROUNDING_AMOUNT = Decimal("0.01")

# service password: what to do after authenticating by ANI or by PIN
ASK, SKIP, REFUSE = "ask", "skip", "refuse"
BY_ANI, BY_PIN = "ani", "pin"

# what a voucher keyed in by a caller came to, besides the amount it credited
# (ivr.services.Services.redeem_voucher): one answer for every voucher that cannot be
# used (unknown, used, expired, another currency), so a guesser learns nothing
VOUCHER_INVALID, VOUCHER_UNAVAILABLE = "invalid", "unavailable"
# a balance transfer the donor card cannot make (unknown, used, another product...): one
# answer for all, as for vouchers; VOUCHER_UNAVAILABLE when PostgreSQL is unreachable
TRANSFER_REFUSED = "refused"


def first_call_code(settings: Mapping[str, Any], access_number: str) -> str:
    """FIRSTCALL, or FIRST#<access number> (use_fixed_access_code_for_first_calls off)."""
    if settings.get("use_fixed_access_code_for_first_calls"):
        return FIRSTCALL
    return f"FIRST#{access_number}"


def outgoing_codes(settings: Mapping[str, Any], access_number: str,
                   first_call: bool) -> tuple[str, ...]:
    """Access codes an outgoing call may be rated by, most specific first: the first-call
    code (when enabled and this is the card's first call), then the grouping prefix when
    set (one rating entry for every access number), else the access number dialed (a
    rating entry per access number), then plain."""
    codes: list[str] = []
    if first_call and settings.get("use_special_access_code_for_first_calls"):
        codes.append(first_call_code(settings, access_number))
    grouping = str(settings.get("grouping_access_code_prefix") or "")
    if grouping or access_number:
        codes.append(grouping or access_number)
    codes.append(PLAIN)
    return tuple(codes)


def choose_code(product: Mapping[str, Any], codes: Sequence[str]) -> str | None:
    """The first of `codes` the product has a rating entry for (None: it rates none)."""
    for code in codes:
        if tariff_for(product, code) is not None:
            return code
    return None


def announcement_codes(access_number: str) -> tuple[str, ...]:
    """Rating entries of "Use announcement tariff": ANNOUNCE+<access number>, then the
    seed's literal ANNOUNCE+DNIS."""
    return (f"{ANNOUNCE}{access_number}", ANNOUNCE_DNIS)


def password_step(mode: str, by: str, has_password: bool) -> str:
    """ASK, SKIP or REFUSE the service password after authenticating `by` ANI or PIN
    (check_service_password: none / always / only_pin / only_ani)."""
    if by == BY_ANI:
        return ASK if mode in ("always", "only_ani") else SKIP
    if mode in ("always", "only_pin"):
        return ASK if has_password else SKIP
    return REFUSE if has_password else SKIP  # none / only_ani: PIN only without a password


def password_matches(account: Mapping[str, Any], entered: str) -> bool:
    """An empty service password field matches any input (the seed)."""
    expected = str(account.get("service_password") or "")
    return not expected or expected == entered


def low_balance(available: Decimal | None, product: Mapping[str, Any] | None = None) -> bool:
    """Less than the product's rounding amount left to spend (None: nothing bounds the
    account)."""
    if available is None:
        return False
    rounding = Decimal(str((product or {}).get("rounding_amount") or ROUNDING_AMOUNT))
    return available < rounding


def talk_seconds(rate: Rate, available: Decimal | None, before: int = 0,
                 cap: int = MAX_CALL_SECONDS) -> int:
    """Seconds a call at `rate` may last on `available` funds (None: unbounded, `cap`),
    less the "Disconnect call before" margin; 0 when nothing is left."""
    if available is None:
        seconds = cap
    else:
        seconds = affordable_seconds(rate, max(available, Decimal(0)), cap)
    return max(0, seconds - max(0, before))


def announced_seconds(seconds: int, rounding: str) -> int:
    """The time announced: exact, or rounded up to the minute ("up": 5:49 -> 6:00)."""
    if rounding == "up":
        return int(math.ceil(seconds / 60) * 60)
    return seconds


@dataclass(frozen=True)
class OutgoingCall:
    """One outgoing call of a session: when it connected and ended (0: never connected)."""
    connect: Decimal
    end: Decimal

    @property
    def seconds(self) -> Decimal:
        return max(Decimal(0), self.end - self.connect) if self.connect else Decimal(0)


@dataclass(frozen=True)
class SessionCharge:
    """What the call to the access number is billed: seconds, under which access code."""
    seconds: int
    access_code: str


def session_charge(settings: Mapping[str, Any], start: Decimal, end: Decimal,
                   calls: Sequence[OutgoingCall]) -> SessionCharge:
    """The incoming leg's billable seconds and access code, by incoming_session_accounting:

    no_charges                        nothing
    all_session_time                  session time outside connected calls, under the
                                      incoming prefix, else ACCESS_CODE.ANSWER(.FAIL)
    outgoing_calls_only               the sum of the connected calls
    all_session_time_unless_all_fail  the whole session, nothing if no call connected
    """
    mode = settings.get("incoming_session_accounting") or NO_CHARGES
    prefix = str(settings.get("incoming_access_code_prefix") or "")
    connected = [c for c in calls if c.connect]
    talk = sum((c.seconds for c in connected), Decimal(0))
    whole = max(Decimal(0), end - start)
    if mode == ALL_SESSION_TIME:
        code = prefix or (ANSWER if connected else ANSWER_FAIL)
        return SessionCharge(_whole_seconds(whole - talk), code)
    if mode == OUTGOING_CALLS_ONLY:
        return SessionCharge(_whole_seconds(talk), prefix)
    if mode == ALL_UNLESS_ALL_FAIL:
        return SessionCharge(_whole_seconds(whole) if connected else 0, prefix)
    return SessionCharge(0, prefix)


def _whole_seconds(value: Decimal) -> int:
    return max(0, math.ceil(value))


def rated_numbers(settings: Mapping[str, Any], ani: str, access_number: str) -> tuple[str, str]:
    """(cli, cld) of the incoming leg's xDR: the writer rates the CLD, so with "Rate by
    CLI" the caller's number is put there and the access number becomes the CLI."""
    if settings.get("rate_by") == "cli" and ani:
        return access_number, ani
    return ani, access_number

