"""The xDR event (keyspace.XDR_STREAM, field `m`): model, msgpack codec, hostile-input checks.

Timestamps travel as decimal text ("1795300000.123") so no float rounding ever reaches
billing; decode() refuses anything that does not match docs/DATA.md with XdrError.
"""
from __future__ import annotations

import decimal
import math
from dataclasses import asdict, dataclass
from decimal import Decimal

import msgpack

VERSION = 1
LEGS = frozenset({"ivr", "toll", "onnet", "out", "in"})
# sane bounds: 2000-01-01 .. 2100-01-01, and no call lasts a week
MIN_TS = Decimal(946684800)
MAX_TS = Decimal(4102444800)
MAX_CALL_SECONDS = 7 * 86400
MAX_TEXT = 256
MAX_EVENT_BYTES = 8192
_TEXT_FIELDS = ("call_id", "session_id", "leg", "account", "cli", "cld", "access_code",
                "reason", "node")
_REQUIRED_TEXT = ("call_id", "session_id", "leg", "account")


class XdrError(ValueError):
    """An event that cannot be billed as it stands."""


@dataclass(frozen=True)
class XdrEvent:
    """One billed leg of a call, as emitted by Kamailio or the IVR."""
    call_id: str
    session_id: str
    leg: str
    account: str
    customer_id: int
    cli: str
    cld: str
    access_code: str
    setup_ts: Decimal
    connect_ts: Decimal
    end_ts: Decimal
    sip_code: int
    reason: str
    node: str
    v: int = VERSION

    def __post_init__(self) -> None:
        validate(self)

    @property
    def answered(self) -> bool:
        return self.connect_ts > 0

    @property
    def duration(self) -> int:
        """end - connect rounded up to whole seconds; 0 if never answered."""
        return duration(self.connect_ts, self.end_ts)

    def to_map(self) -> dict[str, str | int]:
        """The wire map: timestamps as decimal text."""
        record = asdict(self)
        for name in ("setup_ts", "connect_ts", "end_ts"):
            record[name] = str(record[name])
        return record

    def encode(self) -> bytes:
        """msgpack bytes for the stream field `m`."""
        packed: bytes = msgpack.packb(self.to_map(), use_bin_type=True)
        return packed


def duration(connect_ts: Decimal, end_ts: Decimal) -> int:
    """Whole seconds from connect to end, rounded up; 0 when connect_ts is 0."""
    if connect_ts <= 0 or end_ts <= connect_ts:
        return 0
    return math.ceil(end_ts - connect_ts)


def decode(data: bytes) -> XdrEvent:
    """The event in `data`, or XdrError saying what is wrong with it."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_EVENT_BYTES:
        raise XdrError("event is not bytes or is too large")
    try:
        record = msgpack.unpackb(data, raw=False, strict_map_key=True,
                                 max_str_len=MAX_EVENT_BYTES, max_array_len=64, max_map_len=64)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise XdrError(f"not msgpack: {exc.__class__.__name__}") from None
    return from_map(record)


def from_map(record: object) -> XdrEvent:
    """The event in a decoded map, or XdrError."""
    if not isinstance(record, dict):
        raise XdrError("event is not a map")
    missing = [name for name in _FIELDS if name not in record]
    if missing:
        raise XdrError(f"missing field(s): {', '.join(missing)}")
    if record["v"] != VERSION or isinstance(record["v"], bool):
        raise XdrError(f"unsupported version {record['v']!r}")
    values = {name: record[name] for name in _FIELDS}
    for name in ("setup_ts", "connect_ts", "end_ts"):
        values[name] = _timestamp(name, record[name])
    return XdrEvent(**values)


def _timestamp(name: str, value: object) -> Decimal:
    """Decimal seconds from decimal text (or an int 0 for 'never')."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise XdrError(f"{name} must be decimal text, got {type(value).__name__}")
    try:
        result = Decimal(value)
    except decimal.InvalidOperation:
        raise XdrError(f"{name} {value!r} is not a number") from None
    if not result.is_finite():
        raise XdrError(f"{name} {value!r} is not finite")
    return result


def validate(event: XdrEvent) -> None:
    """XdrError unless every field has its type and the timestamps make sense."""
    for name in _TEXT_FIELDS:
        value = getattr(event, name)
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise XdrError(f"{name} must be text of at most {MAX_TEXT} characters")
    for name in _REQUIRED_TEXT:
        if not getattr(event, name):
            raise XdrError(f"{name} is empty")
    if event.leg not in LEGS:
        raise XdrError(f"unknown leg {event.leg!r}")
    for name in ("customer_id", "sip_code"):
        value = getattr(event, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise XdrError(f"{name} must be an integer")
    # 0: the emitter did not know; the writer bills the account's customer anyway
    if not 0 <= event.customer_id < 2**31:
        raise XdrError(f"customer_id {event.customer_id} out of range")
    if not 100 <= event.sip_code <= 699:
        raise XdrError(f"sip_code {event.sip_code} is not a SIP status")
    _validate_times(event)


def _validate_times(event: XdrEvent) -> None:
    for name in ("setup_ts", "connect_ts", "end_ts"):
        value = getattr(event, name)
        if not isinstance(value, Decimal):
            raise XdrError(f"{name} must be a Decimal")
        if name == "connect_ts" and value == 0:
            continue
        if not MIN_TS <= value <= MAX_TS:
            raise XdrError(f"{name} {value} is not a plausible unix time")
    if event.end_ts < event.setup_ts:
        raise XdrError("end_ts is before setup_ts")
    if event.answered and not event.setup_ts <= event.connect_ts <= event.end_ts:
        raise XdrError("connect_ts is outside setup_ts..end_ts")
    if event.end_ts - event.setup_ts > MAX_CALL_SECONDS:
        raise XdrError("call lasts longer than a week")


_FIELDS = tuple(f for f in XdrEvent.__dataclass_fields__)
