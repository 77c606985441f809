"""RFC 4733 DTMF through rtpengine: every digit of every code of one call reaches the IVR.

A phone keys several codes in one call, seconds apart (each after the IVR's re-prompt),
through Kamailio and rtpengine; the IVR must judge each one (a code losing a digit would
time out instead of being judged).
"""
from __future__ import annotations

import pytest

from tests.calls import TOLL, dial, enter_code, ivr_said, phone, wrong_code_judged

pytestmark = pytest.mark.e2e


def test_each_of_three_codes_in_one_call_arrives_whole(tg, sip, gateway, calls_end, office):
    jake = phone(tg, sip, "jake-dtmf", office.jake)
    call = dial(tg, jake, TOLL)
    for failures, code in enumerate(("1357", "2468", "3579"), start=1):
        # keyed in once the IVR asks again, after "the code you entered is not valid"
        enter_code(tg, sip, call, code, times=failures)
        # judged well before the 3 s inter-digit timeout would cut a short code off
        wrong_code_judged(tg, sip, office.jake.id, failures, timeout=10)
    assert not ivr_said(tg, call, "TIMEOUT")
    sip.wait_for(lambda: call.disconnected, 30, "the IVR hanging up after the third code")
    assert gateway.incoming == []
