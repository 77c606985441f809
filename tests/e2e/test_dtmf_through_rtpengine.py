"""RFC 4733 DTMF through rtpengine: every digit of every code of one call reaches the IVR.

A phone keys several codes in one call, seconds apart, through Kamailio and rtpengine; the
IVR must judge each one (a code losing a digit would time out instead of being judged).
"""
from __future__ import annotations

import pytest

from tests.e2e.test_personalized_calling import CLOUD_PBX, TOLL, dial, phone

pytestmark = pytest.mark.e2e

JAKE = CLOUD_PBX["jake"][0]


def test_each_of_three_codes_in_one_call_arrives_whole(tg, sip, gateway, records, calls_end):
    jake = phone(tg, sip, "jake-dtmf", CLOUD_PBX["jake"])
    try:
        codes_are_judged(tg, sip, gateway, dial(tg, jake, TOLL))
    finally:
        sip.remove(jake)  # pjsua allows few transports per process


def codes_are_judged(tg, sip, gateway, call) -> None:
    sip.wait_for(lambda: call.confirmed, 15, "the IVR answering")
    for failures, code in enumerate(("1357", "2468", "3579"), start=1):
        sip.sleep(2.5)
        call.send_dtmf(code)
        line = f"{failures} recent failures of account {JAKE}"
        # judged well before the 3 s inter-digit timeout would cut a short code off
        sip.wait_for(lambda: line in tg.log("ivr"), 10, line)
    assert "TIMEOUT" not in tg.log("ivr")
    sip.wait_for(lambda: call.disconnected, 30, "the IVR hanging up after the third code")
    assert gateway.incoming == []
