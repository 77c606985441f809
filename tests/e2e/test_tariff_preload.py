"""Rate tables in Kamailio: read once in the main process before the workers fork, then
kept current prefix by prefix (no worker reads a whole tariff on its first call, and a
rate change does not make every worker read it again)."""
from __future__ import annotations

import time

import pytest

from tests import tenants
from tests.calls import TOLL, dial, phone
from tests.stack import sip_ping, wait_sip

pytestmark = pytest.mark.e2e

READ = 'tollgate_tariff_tables_total{event="read"}'
CHANGED = 'tollgate_tariff_tables_total{event="prefix_changed"}'


def restart_kamailio(tg) -> None:
    tg.restart("kamailio")
    assert wait_sip(tg.settings.sip_address, tg.settings.sip_port), "Kamailio did not come back"


def call_answered(tg, sip, gateway, ph, number: str) -> bool:
    """Dial `number`; True when the gateway answered it (then hung up), False when refused."""
    call = dial(tg, ph, number)
    sip.wait_for(lambda: call.confirmed or call.disconnected, 15, f"the answer to {number}")
    if call.disconnected:
        return False
    call.hangup_with()
    sip.wait_for(lambda: call.disconnected, 10, "the BYE's answer")
    return True


def test_workers_rate_with_the_preloaded_tables_and_take_one_changed_prefix(
        tg, sip, gateway, records, calls_end):
    client = tenants.straight_out(tg, balance="1000.00")
    tariff = "Tariff " + client.customer.split()[-1]
    restart_kamailio(tg)  # its main process reads every tariff, this one included
    assert "preloaded for the workers" in tg.log("kamailio")
    ph = phone(tg, sip, "preload", (client.account, client.password))
    reads = records.metrics().get(READ, 0.0)
    for n in range(8):  # the calls land on different workers
        assert call_answered(tg, sip, gateway, ph, f"1212555{n:04d}")
    assert records.metrics().get(READ, 0.0) == reads, "a worker read a tariff again"

    tg.cli("rate", "create", tariff, "1213", "--price", "0.60", "--forbidden", "true")
    deadline = time.monotonic() + 20
    while call_answered(tg, sip, gateway, ph, "12135550000"):  # until the change is applied
        assert time.monotonic() < deadline, "the forbidden prefix was never applied"
    assert call_answered(tg, sip, gateway, ph, TOLL)  # the rest of the tariff is unchanged
    deadline = time.monotonic() + 20
    while records.metrics().get(CHANGED, 0.0) < 1:  # workers export their counters each
        assert time.monotonic() < deadline, "no worker counted the changed prefix"
        sip_ping(tg.settings.sip_address, tg.settings.sip_port)  # second, between requests
    assert records.metrics().get(READ, 0.0) == reads, \
        "a one-prefix change made a worker reread the tariff"
