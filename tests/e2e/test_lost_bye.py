"""Money safety when a peer ignores Record-Route: neither the ACK nor the caller's BYE
reach Kamailio, so the dialog would bill up to its hard cap. The dialog module's no-ACK
timeout ends it (20 s after the 2xx, applied by the module's clean-up timer that runs every
90 s, plus 10 s of grace), and the xDR stops there: about two minutes at worst, not hours.
"""
from __future__ import annotations

import pytest

from tests import sipp, tenants
from tests.calls import dial, phone
from tests.phones import SipStack
from tests.records import Records
from tests.servers import kill_group
from tests.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def broken():
    stack = Stack(with_gateway=False).start()
    gateway = sipp.uas(stack.gateway_port, stack.dir, scenario="uas-no-record-route")
    yield stack
    kill_group(gateway)
    stack.stop()


def test_a_call_whose_ack_and_bye_bypass_kamailio_ends_within_two_minutes(broken):
    sip = SipStack.get()
    office = tenants.office(broken, "rachel")
    rachel = phone(broken, sip, "rachel-lost-bye", office.rachel)
    try:
        call = dial(broken, rachel, "18005550123")
        sip.wait_for(lambda: call.confirmed, 15, "the broken gateway answering")
        call.hangup_with()  # this BYE goes straight to the gateway
        sip.wait_for(lambda: call.disconnected, 10, "the caller's hangup")
        rows = Records(broken).wait_xdrs(call.call_id, 1, timeout=180)
        leg, account, _, duration, _ = rows[0]
        assert (leg, account) == ("out", office.rachel.id)
        assert duration <= 130, "the dialog outlived its no-ACK timeout"
    finally:
        sip.remove(rachel)
