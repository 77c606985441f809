"""Without rtpengine a call with SDP is refused with a precise answer, not relayed
without a media relay, and a paid call's reservation is given back."""
from __future__ import annotations

import pytest
import redis

from tests.e2e.test_personalized_calling import dial, phone
from tests.phones import SipStack
from tests.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def no_media():
    stack = Stack(with_gateway=True).start()
    stack.stop_program("rtpengine")
    yield stack
    stack.stop()


def test_a_paid_call_is_refused_with_503_and_reserves_nothing_when_rtpengine_is_down(no_media):
    # a debit account calling toll numbers directly (no IVR): its call reserves funds first
    no_media.cli("account", "create", "17785551277", "--customer", "Smart Calls, Ltd.",
                 "--product", "Smart Calls Office", "--password", "pw-277",
                 "--billing-model", "debit", "--balance", "10")
    sip = SipStack.get()
    caller = phone(no_media, sip, "direct-no-media", ("17785551277", "pw-277"))
    try:
        call = dial(no_media, caller, "12125550123")
        sip.wait_for(lambda: call.disconnected, 30, "the refusal")
        assert call.last_code == 503
        log = no_media.log("kamailio")
        assert "AUTHORIZE: payer 17785551277: 200 Paid" in log
        assert "MEDIA: rtpengine refused the offer" in log
        client = redis.Redis(port=no_media.settings.redis_port)
        assert client.hlen("tg:resv:account:17785551277") == 0
    finally:
        sip.remove(caller)
