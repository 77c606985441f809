"""Without rtpengine a call with SDP is refused with a precise answer, not relayed
without a media relay, and a paid call's reservation is given back."""
from __future__ import annotations

import pytest
import redis

from tests import tenants
from tests.calls import TOLL, dial, phone
from tests.phones import SipStack
from tests.stack import Stack
from tollgate import keyspace

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def no_media():
    stack = Stack(with_gateway=True).start()
    stack.stop_program("rtpengine")
    yield stack
    stack.stop()


def test_a_paid_call_is_refused_with_503_and_reserves_nothing_when_rtpengine_is_down(no_media):
    # a debit account calling toll numbers directly (no IVR): its call reserves funds first
    tenant = tenants.straight_out(no_media, balance="10.00")
    sip = SipStack.get()
    caller = phone(no_media, sip, "direct-no-media", (tenant.account, tenant.password))
    try:
        call = dial(no_media, caller, TOLL)
        sip.wait_for(lambda: call.disconnected, 30, "the refusal")
        assert call.last_code == 503
        log = no_media.log("kamailio")
        assert f"AUTHORIZE: payer {tenant.account}: 200 Paid" in log
        assert "MEDIA: rtpengine refused the offer" in log
        client = redis.Redis(port=no_media.settings.redis_port)
        assert client.hlen(keyspace.reservations("account", tenant.account)) == 0
    finally:
        sip.remove(caller)
