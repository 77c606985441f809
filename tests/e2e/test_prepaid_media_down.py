"""rtpengine not answering mid-session (its own module: Kamailio sets a silent rtpengine
aside for a while, and no other scenario should share that stack)."""
from __future__ import annotations

import os
import signal

import pytest

from tests import tenants
from tests.calls import TOLL, from_the_pstn, ivr_log, logged

pytestmark = pytest.mark.e2e


def test_rtpengine_hanging_mid_session_refuses_the_outgoing_call_not_the_session(
        tg, sip, gateway, calls_end):
    # known by ANI, the card's associated number dialed at once: the outgoing call is
    # placed when the welcome message ends, with no digit to carry through rtpengine
    card = tenants.prepaid_card(
        tg, ani_alias="ani44244444444", card_fields={"associated_number": TOLL},
        settings={"ani_authentication": True, "ani_translation_rule": "s/^0/ani44/",
                  "check_associated_number": True})
    call = from_the_pstn(tg, gateway, card.access_number, "0244444444")
    sip.wait_for(lambda: logged(tg, call, "PROMPT: playing welcome"), 15, "the welcome")
    rtpengine = tg.procs["rtpengine"]
    os.killpg(rtpengine.pid, signal.SIGSTOP)
    try:
        sip.wait_for(lambda: logged(tg, call, f"REFUSED: call to {TOLL} answered 503"), 30,
                     "Kamailio refusing the outgoing call: no media relay")
    finally:
        os.killpg(rtpengine.pid, signal.SIGCONT)
    # the IVR logs the prompt a moment after the refusal: wait for it, never race it
    sip.wait_for(lambda: logged(tg, call, "PROMPT: playing unavailable"), 10,
                 "the unavailable prompt")
    assert gateway.incoming == []
    # the session goes on: the caller may dial another number (its audio may not: rtpengine
    # 10.5 in userspace gives up a stream whose socket queued up while it was stopped)
    line = f"[{call.call_id}] PROMPT: playing enter_destination "
    sip.wait_for(lambda: line in ivr_log(tg), 20, "the destination asked")
