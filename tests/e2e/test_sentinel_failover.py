"""The whole stack on Redis Sentinel (a master, two replicas, three sentinels): the master
is SIGKILLed while a call is up and another has just ended. Every process finds the new
master on its own: the call up ends and is billed, the next call is authorized, and no
xDR is lost or billed twice (docs/REDIS_HA.md)."""
from __future__ import annotations

from decimal import Decimal

import pytest
import redis

from provisioning.xdr_writer import GROUP
from tests import tenants
from tests.calls import TOLL, dial, phone, talking
from tests.records import Records, wait_until
from tests.servers import SentinelSet
from tests.stack import Stack
from tollgate import keyspace, redis_conn

pytestmark = pytest.mark.e2e


class SentinelStack(Stack):
    """A Stack whose Redis is a SentinelSet: every tollgate process gets redis_sentinels."""

    def __init__(self) -> None:
        ha = SentinelSet(replicas=2)
        super().__init__(with_gateway=False, redis_sentinels=ha.addresses,
                         redis_master_name=ha.name)
        self.ha = ha
        self.redis = ha  # started and stopped as the one Redis would be


@pytest.fixture(scope="module")
def tg():
    stack = SentinelStack().start()
    print(f"stack logs: {stack.dir}, sentinels: {stack.ha.dir}")
    yield stack
    stack.stop()


def written_out(tg) -> bool:
    """The writers' group has nothing undelivered or unacknowledged on the current master."""
    client = redis_conn.client(tg.settings, timeout=2)
    try:
        for group in client.xinfo_groups(keyspace.XDR_STREAM):
            if group["name"] in (GROUP, GROUP.encode()):
                return group.get("lag") == 0 and group["pending"] == 0
    except redis.RedisError:
        return False
    finally:
        client.close()
    return False


def test_calls_are_authorized_and_billed_across_a_failover(tg, sip, gateway, calls_end):
    records = Records(tg)
    payer = tenants.straight_out(tg, balance="500.00")  # three calls held at once
    ph = phone(tg, sip, "ha", (payer.account, payer.password))

    # one call ends just before the master dies, another is up through the failover
    before = dial(tg, ph, TOLL)
    sip.wait_for(lambda: before.confirmed, 15, "the call before the failover answered")
    up = dial(tg, ph, TOLL)
    sip.wait_for(lambda: up.confirmed, 15, "the call through the failover answered")
    talking(sip, up)
    before.hangup_with()
    sip.wait_for(lambda: before.disconnected, 10, "the first call ended")

    old = tg.ha.kill_master()
    tg.ha.wait_failover(old)

    # the first call placed after the switch is authorized (funds held on the new master)
    after = dial(tg, ph, TOLL)
    sip.wait_for(lambda: after.confirmed or after.disconnected, 15, "the call after")
    assert after.confirmed, f"refused after the failover: {after.last_code} {after.last_reason}"
    talking(sip, after)
    up.hangup_with()
    after.hangup_with()
    sip.wait_for(lambda: up.disconnected and after.disconnected, 10, "both calls ended")

    calls = [before, up, after]
    for call in calls:
        records.wait_xdrs(call.call_id, 1, timeout=60)
    wait_until(lambda: written_out(tg), 60, "the xDR writer emptying the stream")
    rows = records.query("SELECT call_id, amount FROM xdrs WHERE account_id = %s",
                         payer.account)
    assert sorted(c for c, _ in rows) == sorted(c.call_id for c in calls)  # once each
    charged = sum((amount for _, amount in rows), Decimal(0))
    assert charged > 0
    assert records.balance(payer.account) == Decimal("500.00") - charged
    # nothing is held any more by the ended calls, on the new master
    client = redis_conn.client(tg.settings, timeout=2)
    assert client.hlen(keyspace.reservations("account", payer.account)) == 0
