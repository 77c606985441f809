"""The whole stack (Kamailio, rtpengine, IVR, xDR writer, Redis, PostgreSQL) and pjsua2
phones registered to it, shared by the end-to-end scenarios of one module."""
from __future__ import annotations

import time
from decimal import Decimal

import psycopg
import pytest

from tests.phones import SipStack
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


class Records:
    """What the scenarios read back from PostgreSQL (the system of record)."""

    def __init__(self, stack: Stack):
        self.dsn = stack.pg.dsn()

    def query(self, sql: str, *args):
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(sql, args).fetchall()

    def xdrs(self, session: str) -> list[tuple]:
        """(leg, account, cld, duration, amount) of a session's xDRs, legs in order."""
        return self.query("SELECT leg, account_id, cld, duration, amount FROM xdrs "
                          "WHERE session_id = %s ORDER BY leg", session)

    def wait_xdrs(self, session: str, count: int, timeout: float = 20) -> list[tuple]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.xdrs(session)
            if len(rows) >= count:
                return rows
            time.sleep(0.2)
        raise TimeoutError(f"{count} xDRs for session {session}, have {self.xdrs(session)}")

    def balance(self, account: str) -> Decimal:
        return self.query("SELECT balance FROM accounts WHERE id = %s", account)[0][0]


@pytest.fixture(scope="module")
def records(tg):
    return Records(tg)
