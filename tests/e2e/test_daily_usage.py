"""A virtual PBX client's max daily usage through the real stack (Kamailio, rtpengine,
Redis, PostgreSQL, the xDR writer, an SMTP server, the gateway and phones): the day's
allowance caps a call and refuses the concurrent ones, a day reached is told by e-mail
once, and another day starts over. Each scenario makes its own client."""
from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest

from billing.daily import day_of
from tests import tenants
from tests.calls import TOLL, TOLL_FREE, dial, phone, talking
from tests.mailbox import Mailbox
from tests.records import Records
from tests.stack import Stack
from tollgate import keyspace

pytestmark = pytest.mark.e2e

TZ = "Pacific/Auckland"   # a client whose day is not the machine's


@pytest.fixture(scope="module")
def mailbox():
    box = Mailbox().start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def tg(mailbox):
    """The stack, its xDR writer e-mailing through the test's SMTP server."""
    stack = Stack(with_gateway=False, smtp_host="127.0.0.1", smtp_port=mailbox.port).start()
    yield stack
    stack.stop()


def client_with(tg, limit: str):
    """A client of its own with a max daily usage; calls cost 0.01 a second (0.60/min,
    1/1), its account holds 10.00: the day is the tighter bound."""
    email = f"ops-{uuid.uuid4().hex[:8]}@client.example"
    client = tenants.straight_out(tg, client={"max_daily_usage": limit, "timezone": TZ,
                                              "daily_usage_email": email})
    return client, email


def customer_id(records: Records, client) -> int:
    return records.query("SELECT customer_id FROM accounts WHERE id = %s", client.account)[0][0]


def test_the_days_allowance_caps_a_call_and_refuses_concurrent_ones(
        tg, sip, gateway, records, mailbox, calls_end):
    client, email = client_with(tg, "0.04")
    ph = phone(tg, sip, "daily", (client.account, client.password))
    first = dial(tg, ph, TOLL)
    out = gateway.wait_incoming(15)
    sip.wait_for(lambda: first.confirmed, 10, "the first call answered")
    talking(sip, first, out)
    # the first call holds all the day allows: a second one at the same time is refused
    second = dial(tg, ph, TOLL)
    sip.wait_for(lambda: second.disconnected, 10, "the concurrent call refused")
    assert (second.last_code, second.last_reason) == (403, "Max daily usage reached")
    # the refusal tells the client, once
    sip.wait_for(lambda: mailbox.to(email), 15, "the daily usage e-mail")
    # Kamailio ends the first call when the day's 0.04 is spent (4 s)
    sip.wait_for(lambda: first.disconnected, 30, "the cap ending the first call")
    [row] = records.settled_xdrs(first.call_id, 1)
    assert row[3] <= 4 and row[4] <= Decimal("0.04")
    cid = customer_id(records, client)
    spent = records.query("SELECT spent FROM daily_usage WHERE customer_id = %s", cid)
    assert spent == [(row[4],)]
    assert records.balance(client.account) == Decimal("10.00") - row[4]
    # nothing of the day is held any more, and the day stays spent
    held = records.redis().hlen(keyspace.reservations("daily", cid))
    assert held == 0
    third = dial(tg, ph, TOLL)
    sip.wait_for(lambda: third.disconnected, 10, "a call after the day is spent")
    assert third.last_code == 403
    assert len(mailbox.to(email)) == 1
    [mail] = mailbox.to(email)
    assert mail["Subject"].startswith("Max daily usage reached: ")


def test_a_spent_day_refuses_free_external_calls_but_not_on_net_ones(
        tg, sip, gateway, records, calls_end):
    client, _ = client_with(tg, "1.00")
    cid = customer_id(records, client)
    today = day_of(TZ, time.time())
    records.redis().set(keyspace.daily_spent(cid, today), "1.00000")
    ph = phone(tg, sip, "daily-free", (client.account, client.password))
    free = dial(tg, ph, TOLL_FREE)
    sip.wait_for(lambda: free.disconnected, 10, "the toll-free call refused")
    assert (free.last_code, free.last_reason) == (403, "Max daily usage reached")
    assert gateway.incoming == []


def test_yesterdays_spend_does_not_stop_today(tg, sip, gateway, records, calls_end):
    """The counter is the client's day: a day spent yesterday (in its timezone) leaves
    today's allowance whole (the moment of midnight itself: tests/integration)."""
    client, email = client_with(tg, "0.50")
    cid = customer_id(records, client)
    yesterday = day_of(TZ, time.time() - 86400)
    records.redis().set(keyspace.daily_spent(cid, yesterday), "0.50000")
    ph = phone(tg, sip, "daily-new", (client.account, client.password))
    call = dial(tg, ph, TOLL)
    out = gateway.wait_incoming(15)
    sip.wait_for(lambda: call.confirmed, 10, "today's call answered")
    talking(sip, call, out)
    call.hangup_with()
    [row] = records.settled_xdrs(call.call_id, 1)
    assert row[4] > 0
    today = day_of(TZ, time.time())
    assert records.query("SELECT day::text, spent FROM daily_usage WHERE customer_id = %s",
                         cid) == [(today, row[4])]
