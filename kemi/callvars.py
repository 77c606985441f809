"""A call's billing context in its dialog: one packed dialog variable plus a few of its own.

The dialog module writes through to PostgreSQL (db_mode 1: a restarted Kamailio keeps
capping and billing its calls), one `dialog_vars` row per variable, each an INSERT on the
way in and a DELETE on the way out. One variable per field made ~15 rows and ~19 commits a
call, most of PostgreSQL's work per call. What the INVITE knows is packed into one
variable (`ctx`, form-encoded), the first values of the changing fields among them. A field
another request changes while the call lasts (the 2xx's connect time, an INFO's keys, a
re-authorization's cap) then gets a variable of its own, which wins over the packed value,
so two requests of one call never overwrite each other's field. The INVITE writes one row
and the 2xx one more (it was five: an own variable per changing field from the start).

A call set up by an older version (variables one per field) is read as it was stored.
"""
from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

import KSR

from kemi import message
from kemi.constants import DLG_CONTEXT as PACKED
from kemi.constants import DLG_VARS, dlg_var

# changed by replies and in-dialog requests: each in its own variable
OWN = frozenset({"connect_ts", "reserved", "max_duration", "recorded", "dtmf", "final_code",
                 "final_reason"})
CLEARED = "~"   # an own variable emptied after the INVITE: its packed first value is void


def _unpack(text: str) -> dict[str, str]:
    return dict(parse_qsl(text, keep_blank_values=True))


def _legacy() -> dict[str, str]:
    """The packed fields of a call stored one variable per field (before an upgrade)."""
    return {name: message.pv(dlg_var(name)) for name in DLG_VARS if name not in OWN}


def _own(name: str) -> str | None:
    """An own variable's value; None when it was never set (the packed value holds)."""
    value = message.pv(dlg_var(name))
    if not value:
        return None
    return "" if value == CLEARED else value


def get(name: str) -> str:
    """One field of the call's context ("" when unset)."""
    assert name in DLG_VARS, name
    if name in OWN and (value := _own(name)) is not None:
        return value
    text = message.pv(PACKED)
    if not text:
        return "" if name in OWN else message.pv(dlg_var(name))
    return _unpack(text).get(name, "")


def read() -> dict[str, str]:
    """Every field of the call's context ("" when unset)."""
    text = message.pv(PACKED)
    packed = _unpack(text) if text else _legacy()
    values = {name: packed.get(name, "") for name in DLG_VARS}
    for name in OWN:
        if (value := _own(name)) is not None:
            values[name] = value
    return values


def put(values: Mapping[str, object], fresh: bool = False) -> None:
    """Set fields (None or "" clears one); `fresh`: a dialog without a packed context is
    new (the INVITE's relay), not one stored by an older version."""
    stored = message.pv(PACKED)
    first = fresh and not stored  # the INVITE's relay: every field starts packed
    packed: dict[str, str] = {}
    for name, value in values.items():
        assert name in DLG_VARS, name
        text = "" if value is None else str(value)
        if name in OWN and not first:
            KSR.pv.sets(dlg_var(name), text or CLEARED)
        else:
            packed[name] = text
    if not packed:
        return
    if not first:
        packed = {**(_unpack(stored) if stored else _legacy()), **packed}
    KSR.pv.sets(PACKED, urlencode({k: v for k, v in packed.items() if v}))
