"""The whole stack (Kamailio, rtpengine, IVR, xDR writer, Redis, PostgreSQL) and pjsua2
phones registered to it, shared by the end-to-end scenarios of one module. The accounts
are not shared: each scenario makes its own (the `office` fixture, tests/tenants.py)."""
from __future__ import annotations

import pytest

from tests import tenants
from tests.phones import SipStack
from tests.records import Records
from tests.stack import Stack


@pytest.fixture(scope="module")
def tg():
    stack = Stack(with_gateway=False).start()
    print(f"stack logs: {stack.dir}")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def sip():
    return SipStack.get()


@pytest.fixture(scope="module")
def gateway(tg, sip):
    """The PSTN gateway: a pjsua2 UAS on the gateway port answering every call."""
    phone = sip.phone("gateway", port=tg.gateway_port, answer=200)
    yield phone
    sip.remove(phone)


@pytest.fixture
def calls_end(sip, gateway):
    """Every call and phone of a scenario ends with it; the gateway forgets what it saw."""
    gateway.answer, gateway.reason = 200, ""
    gateway.incoming.clear()
    yield
    sip.hangup_all()
    # a phone holds a pjsua transport, and pjsua has few: drop the scenario's phones
    for ph in [p for p in sip.phones if p is not gateway]:
        sip.remove(ph)


@pytest.fixture(scope="module")
def records(tg):
    return Records(tg)


@pytest.fixture
def office(tg):
    """A customer of this scenario alone, set up as the seeds' Smart Calls: Rachel (PIN
    4545), Mark (8989) and Jake (1211), calling via a pass-through IVR."""
    return tenants.office(tg)
