"""rtpengine not answering mid-session (its own module: Kamailio sets a silent rtpengine
aside for a while, and no other scenario should share that stack)."""
from __future__ import annotations

import os
import signal

import pytest

from tests import tenants
from tests.calls import TOLL, dial, heard, logged, phone
from tests.e2e.test_prepaid_card import QUIET

pytestmark = pytest.mark.e2e


def test_rtpengine_hanging_mid_session_refuses_the_outgoing_call_not_the_caller(
        tg, sip, gateway, calls_end):
    card = tenants.prepaid_card(tg, settings=QUIET)
    ph = phone(tg, sip, "caller", (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    card_then_destination_paused(tg, sip, call, card.card)
    heard(tg, sip, call, "unavailable")
    assert gateway.incoming == []
    heard(tg, sip, call, "enter_destination", times=2)  # and may dial again
    call.hangup_with()


def card_then_destination_paused(tg, sip, call, card: str) -> None:
    """Key in the card, then dial while rtpengine does not answer its control port."""
    heard(tg, sip, call, "enter_card")
    call.send_dtmf(card)
    heard(tg, sip, call, "enter_destination")
    rtpengine = tg.procs["rtpengine"]
    os.killpg(rtpengine.pid, signal.SIGSTOP)
    try:
        call.send_dtmf(TOLL + "#")
        sip.wait_for(lambda: logged(tg, call, "REFUSED: call to " + TOLL + " answered 503"),
                     30, "the outgoing call refused")
    finally:
        os.killpg(rtpengine.pid, signal.SIGCONT)
