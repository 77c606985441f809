"""The voice notification app: the locution once, then the refusal's own final response."""
from __future__ import annotations

import pytest

from billing import internal
from ivr.actions import Hangup, Play
from ivr.apps.notice import Notice

pytestmark = pytest.mark.unit


def test_the_locution_then_the_refusal():
    app = Notice("c1", 403, "no_permission", "No permission to place this call")
    assert app.start() == [Play(("no_permission",))]
    assert app.on_digit("5") == [] and app.on_timer("prompt") == []
    assert app.on_prompt_done() == [Hangup("caller", 403, "No permission to place this call")]
    assert app.on_prompt_done() == []   # once


def test_a_caller_who_hung_up_gets_nothing_more():
    app = Notice("c1", 402, "insufficient_funds", "Insufficient funds")
    app.start()
    assert app.on_caller_hangup() == []
    assert app.on_prompt_done() == [] and app.on_fault() == []


def test_a_fault_still_refuses_with_the_code():
    app = Notice("c1", 486, "max_calls_reached", "Max calls reached")
    assert app.on_fault() == [Hangup("caller", 486, "Max calls reached")]


@pytest.mark.parametrize("value, parsed", [
    ("403;no_permission;No permission to place this call",
     (403, "no_permission", "No permission to place this call")),
    ("402;insufficient_funds;Insufficient; funds", (402, "insufficient_funds",
                                                   "Insufficient; funds")),
    ("200;no_permission;OK", None), ("abc;x;y", None), ("403;../etc;x", None),
    ("403;no_permission;", None), ("", None)])
def test_notify_values(value, parsed):
    assert internal.parse_notice(value) == parsed


def test_notify_round_trip_and_signed():
    value = internal.notice(403, "cannot_bill", "Call cannot be billed")
    headers = internal.sign(b"k", "call", internal.Internal("a", "d", "s", notify=value))
    assert internal.verify(b"k", "call", headers).notify == value
    headers[internal.NOTIFY] = internal.notice(200, "cannot_bill", "OK")
    assert internal.verify(b"k", "call", headers) is None
