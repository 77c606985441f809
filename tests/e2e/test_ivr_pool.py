"""IVR workers: Kamailio spreads callers over them and passes a caller on when one is full.

Two workers taking one caller each: of three simultaneous callers two are answered by the
IVR (one of them, at least, after its first-choice worker said 503), the third gets 503.
"""
from __future__ import annotations

import pytest

from tests import tenants
from tests.calls import TOLL, dial, phone
from tests.phones import SipStack
from tests.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pool():
    stack = Stack(with_gateway=False, ivr_workers=2, ivr_max_sessions=1).start()
    print(f"stack logs: {stack.dir}")
    yield stack
    stack.stop()


def test_callers_beyond_one_worker_go_to_the_next_and_beyond_all_get_503(pool):
    sip = SipStack.get()
    office = tenants.office(pool)
    callers = [phone(pool, sip, f"pool-{name}", office.people[name])
               for name in ("mark", "rachel", "jake")]
    calls = []
    try:
        for caller in callers:
            calls.append(dial(pool, caller, TOLL))
            sip.wait_for(lambda: calls[-1].confirmed or calls[-1].disconnected, 15,
                         "an answer from the IVR pool")
        answered = [c for c in calls if c.confirmed]
        refused = [c for c in calls if c.disconnected]
        assert len(answered) == 2
        assert [(c.last_code, c.last_reason) for c in refused] == [(503, "IVR capacity reached")]
        log = pool.log("kamailio")
        # the third caller's first-choice worker was full: it was passed on at least once
        assert log.count("worker busy or silent, trying worker") >= 1
    finally:
        sip.hangup_all()
        for caller in callers:
            sip.remove(caller)
