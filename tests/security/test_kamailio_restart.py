"""Kamailio restarted mid-call: the dialog module keeps live calls in PostgreSQL (db_mode
realtime), so the restarted proxy still routes the call's BYE, writes its xDR once, with
the call's real identity, and gives back the payer's reservation."""
from __future__ import annotations

import psycopg
import pytest
import redis

from tests import tenants
from tests.stack import wait_sip
from tollgate import keyspace
from tollgate import stack as programs

pytestmark = pytest.mark.e2e

TOLL = "12125550142"


def registered(tg, sip, name: str, tenant: tenants.Tenant):
    ph = sip.phone(name)
    code = ph.register(f"sip:{tg.sip_target}", tenant.account, tenant.password,
                       tg.settings.sip_domain)
    assert code == 200, f"REGISTER {tenant.account} got {code}"
    return ph


def dialog_rows(tg, call_id: str) -> int:
    with psycopg.connect(tg.pg.dsn()) as conn:
        return conn.execute("SELECT count(*) FROM dialog WHERE callid = %s",
                            (call_id,)).fetchone()[0]


def restart_kamailio(tg, crash: bool) -> None:
    """SIGKILL (a crash) or SIGTERM (an operator's restart), then the same command again."""
    if crash:
        tg.kill_program("kamailio")
    else:
        tg.stop_program("kamailio")
    prog = next(p for p in programs.programs(tg.settings) if p.name == "kamailio")
    tg.start_program(prog)
    assert wait_sip(tg.settings.sip_address, tg.settings.sip_port), "Kamailio did not come back"


@pytest.mark.parametrize("crash", [True, False], ids=["sigkill", "sigterm"])
def test_a_call_outliving_a_kamailio_restart_is_billed_exactly_once(
        tg, sip, gateway, records, calls_end, crash):
    tenant = tenants.straight_out(tg, balance="10.00", price="0.60", interval="1/1")
    phone = registered(tg, sip, f"restart-{crash}", tenant)
    call = phone.call(f"sip:{TOLL}@{tg.sip_target}")
    leg = gateway.wait_incoming(15)
    sip.wait_for(lambda: call.confirmed and leg.confirmed, 15, "the call up")
    sip.wait_for(lambda: dialog_rows(tg, call.call_id) == 1, 10, "the dialog stored")
    restart_kamailio(tg, crash)
    sip.sleep(1.0)  # the call goes on across the restart, media through rtpengine
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "the BYE relayed by the new Kamailio")
    records.wait_xdrs(call.call_id, 1)
    rows = records.query("SELECT call_id, account_id, duration, amount, sip_code FROM xdrs "
                         "WHERE session_id = %s", call.call_id)
    assert len(rows) == 1, rows
    call_id, account, duration, amount, code = rows[0]
    assert (call_id, account, code) == (call.call_id, tenant.account, 200)
    assert duration >= 1 and amount > 0
    sip.wait_for(lambda: dialog_rows(tg, call.call_id) == 0, 10, "the dialog forgotten")
    client = redis.Redis(port=tg.settings.redis_port)
    assert not client.hexists(keyspace.reservations("account", tenant.account), call.call_id)
    # a second restart finds nothing to bill again
    restart_kamailio(tg, crash=True)
    phone2 = registered(tg, sip, f"restart-after-{crash}", tenant)
    second = phone2.call(f"sip:{TOLL}@{tg.sip_target}")
    sip.wait_for(lambda: second.confirmed, 15, "the next call accepted at once")
    second.hangup_with()
    records.wait_xdrs(second.call_id, 1)
    assert len(records.query("SELECT 1 FROM xdrs WHERE session_id = %s", call.call_id)) == 1
