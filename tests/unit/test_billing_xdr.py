"""xDR events: codec roundtrip, duration rule, hostile input refused with a clear error."""
from decimal import Decimal as D

import msgpack
import pytest

from billing.xdr import XdrError, XdrEvent, decode, duration, from_map

pytestmark = pytest.mark.unit


def event_map(**changes):
    record = {"v": 1, "call_id": "a84b4c76e66710", "session_id": "a84b4c76e66710",
              "leg": "toll", "account": "17785551209", "customer_id": 1,
              "cli": "17785551210", "cld": "12125551234", "access_code": "",
              "setup_ts": "1795300000.000", "connect_ts": "1795300003.250",
              "end_ts": "1795300064.251", "sip_code": 200, "reason": "", "node": "sip1"}
    record.update(changes)
    return record


def packed(**changes):
    return msgpack.packb(event_map(**changes), use_bin_type=True)


def test_roundtrip_keeps_exact_timestamps():
    event = decode(packed())
    assert event.connect_ts == D("1795300003.250")
    assert decode(event.encode()) == event
    assert msgpack.unpackb(event.encode())["end_ts"] == "1795300064.251"


def test_duration_rounds_up_to_whole_seconds():
    # 61.001 s -> 62
    assert decode(packed()).duration == 62
    assert duration(D("100"), D("160")) == 60
    assert duration(D("100"), D("160.000001")) == 61


def test_unknown_customer_is_accepted_as_zero():
    assert decode(packed(customer_id=0)).customer_id == 0


def test_unanswered_call_has_no_duration():
    event = decode(packed(connect_ts="0", sip_code=486))
    assert not event.answered
    assert event.duration == 0
    assert decode(packed(connect_ts=0)).duration == 0


@pytest.mark.parametrize("changes, message", [
    ({"leg": "moon"}, "unknown leg"),
    ({"call_id": ""}, "call_id is empty"),
    ({"account": 17785551209}, "account must be text"),
    ({"customer_id": "1"}, "customer_id must be an integer"),
    ({"customer_id": True}, "customer_id must be an integer"),
    ({"customer_id": -1}, "customer_id -1 out of range"),
    ({"sip_code": 99}, "sip_code"),
    ({"setup_ts": 1795300000.0}, "setup_ts must be decimal text"),
    ({"end_ts": "soon"}, "end_ts 'soon' is not a number"),
    ({"end_ts": "Infinity"}, "not finite"),
    ({"setup_ts": "12", "connect_ts": "0", "end_ts": "13"}, "plausible"),
    ({"end_ts": "99999999999"}, "plausible"),
    ({"end_ts": "1795299999"}, "end_ts is before setup_ts"),
    ({"connect_ts": "1795300099"}, "connect_ts is outside"),
    ({"end_ts": "1796300000"}, "longer than a week"),
    ({"v": 2}, "unsupported version"),
    ({"cld": "1" * 300}, "at most"),
])
def test_hostile_fields_are_refused(changes, message):
    with pytest.raises(XdrError, match=message):
        decode(packed(**changes))


def test_missing_fields_are_named():
    record = event_map()
    del record["account"], record["end_ts"]
    with pytest.raises(XdrError, match="missing field.*account.*end_ts"):
        decode(msgpack.packb(record))


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x93\x01\x02\x03", b"\xff" * 10,
                                  msgpack.packb({1: 2}), b"x" * 10000, "text"])
def test_garbage_is_refused(data):
    with pytest.raises(XdrError):
        decode(data)


def test_from_map_refuses_non_maps():
    with pytest.raises(XdrError, match="not a map"):
        from_map([1, 2])


def test_constructing_a_bad_event_fails_early():
    with pytest.raises(XdrError):
        XdrEvent(call_id="c", session_id="s", leg="toll", account="a", customer_id=1,
                 cli="", cld="", access_code="", setup_ts=D(5), connect_ts=D(0),
                 end_ts=D(6), sip_code=200, reason="", node="n")
