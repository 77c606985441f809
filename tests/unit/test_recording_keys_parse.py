"""rtpengine's DTMF reports as the recording-keys listener reads them: anything else a
datagram may hold (it is network input) is not a key."""
from __future__ import annotations

import json

import pytest

from tollgate.recording_keys import digit, parse

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("event, key", [(0, "0"), (9, "9"), (10, "*"), (11, "#"), (12, "A"),
                                        (15, "D"), (16, ""), (-1, ""), ("5", ""), (None, ""),
                                        (True, "")])
def test_rfc4733_event_codes(event, key):
    assert digit(event) == key


def test_a_report_gives_call_tag_and_key():
    report = {"callid": "abc@host", "source_tag": "ft1", "tags": ["ft1", "tt1"], "event": 11,
              "duration": 160, "volume": 10, "type": "DTMF"}
    assert parse(json.dumps(report).encode()) == ("abc@host", "ft1", "#")


@pytest.mark.parametrize("datagram", [
    b"", b"\xff\xfe", b"not json", b"[1, 2]", b'"text"',
    json.dumps({"callid": "", "source_tag": "a", "event": 1}).encode(),
    json.dumps({"callid": "x" * 256, "source_tag": "a", "event": 1}).encode(),
    json.dumps({"callid": 5, "source_tag": "a", "event": 1}).encode(),
    json.dumps({"callid": "c", "event": 1}).encode(),
    json.dumps({"callid": "c", "source_tag": "a", "event": 99}).encode(),
])
def test_anything_else_is_not_a_key(datagram):
    assert parse(datagram) is None
