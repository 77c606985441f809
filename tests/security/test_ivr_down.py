"""The IVR down: a paid call of a phone that calls via the IVR is refused within seconds
with 503 and a reason (not 30 s of silence), free calls still go through, and an IVR that
comes back never answers a caller who already gave up."""
from __future__ import annotations

import os
import signal

import pytest

from tests import tenants
from tests.stack import Stack

pytestmark = pytest.mark.e2e

TOLL = "12125550177"
TOLL_FREE = "18005550177"
WORKERS = ("ivr-0", "ivr-1")


@pytest.fixture(scope="module")
def tg():
    # a stack of its own: its IVR workers are stopped and frozen
    stack = Stack(with_gateway=False, ivr_answer_timeout=2).start()
    print(f"stack logs: {stack.dir}")
    yield stack
    stack.stop()


def registered(tg, sip, name: str, tenant: tenants.IvrTenant):
    ph = sip.phone(name)
    code = ph.register(f"sip:{tg.sip_target}", tenant.caller, tenant.password,
                       tg.settings.sip_domain)
    assert code == 200, f"REGISTER {tenant.caller} got {code}"
    return ph


def signal_workers(tg, signum: int) -> None:
    for name in WORKERS:
        os.killpg(tg.procs[name].pid, signum)


def test_with_the_ivr_down_paid_calls_get_503_and_free_calls_pass(
        tg, sip, gateway, records, calls_end):
    tenant = tenants.via_ivr(tg)
    phone = registered(tg, sip, "ivr-down", tenant)
    for name in WORKERS:
        tg.stop_program(name)
    try:
        paid = phone.call(f"sip:{TOLL}@{tg.sip_target}")
        # each worker gets ivr_answer_timeout (2 s) to answer: well under the 30 s of old
        sip.wait_for(lambda: paid.disconnected, 4 * len(WORKERS) + 2, "the refusal")
        assert (paid.last_code, paid.last_reason) == (503, "IVR unavailable")
        assert gateway.incoming == []
        free = phone.call(f"sip:{TOLL_FREE}@{tg.sip_target}")
        leg = gateway.wait_incoming(10)
        sip.wait_for(lambda: free.confirmed and leg.confirmed, 10, "the toll-free call")
        free.hangup_with()
        sip.wait_for(lambda: leg.disconnected, 10, "the toll-free call's end")
        rows = records.wait_xdrs(paid.call_id, 1)
        assert [(r[0], r[1], r[4]) for r in rows] == [("ivr", tenant.caller, 0)]
        code = records.query("SELECT sip_code FROM xdrs WHERE call_id = %s", paid.call_id)
        assert code == [(503,)]
    finally:
        for name in WORKERS:
            tg.restart(name)


def test_an_ivr_that_comes_back_does_not_answer_a_caller_who_gave_up(
        tg, sip, gateway, records, calls_end):
    tenant = tenants.via_ivr(tg)
    phone = registered(tg, sip, "ivr-frozen", tenant)
    signal_workers(tg, signal.SIGSTOP)  # alive, but deaf: the INVITEs wait in their sockets
    try:
        call = phone.call(f"sip:{TOLL}@{tg.sip_target}")
        sip.wait_for(lambda: call.disconnected, 4 * len(WORKERS) + 2, "the refusal")
        assert call.last_code == 503
    finally:
        signal_workers(tg, signal.SIGCONT)
    # the workers read the INVITEs they were sent while frozen, and refuse them as stale
    sip.wait_for(lambda: tg.log("ivr").count(f"[{call.call_id}] TRUST") >= len(WORKERS), 15,
                 "both workers reading the stale INVITE")
    assert f"[{call.call_id}] ANSWER" not in tg.log("ivr")
    assert not call.confirmed
