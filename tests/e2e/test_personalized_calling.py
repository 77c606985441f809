"""Personalized calling (personalized-cloud-pbx-calling.txt, personalized-ip-centrex-calling.txt)
through the real stack: Kamailio + KEMI, rtpengine, the pjsua2 IVR, the xDR writer.

Each scenario sets up its own office as the seeds do (tests/tenants.py): Rachel (PIN 4545),
Mark (PIN 8989) and Jake, one associated number, all calling via a "Roaming PIN" IVR;
toll numbers under 1 cost 0.02/min billed per started minute, 1800... is toll-free. The
README's walkthrough runs on the demo tenant itself (demo/smart-calls.yaml).
"""
from __future__ import annotations

from decimal import Decimal

import pytest

from billing.rating import charge
from tests import tenants
from tests.calls import (
    DEMO,
    NORTH_AMERICA,
    TOLL,
    TOLL_FREE,
    dial,
    enter_code_and_reach_gateway,
    media_port,
    phone,
    talking,
)
from tests.phones import make_tone
from tests.servers import log_dir
from tests.stack import sip_ping

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("style", [tenants.CLOUD_PBX, tenants.IP_CENTREX])
def test_rachel_dials_a_toll_number_from_marks_phone_and_enters_4545(
        tg, sip, gateway, records, calls_end, style):
    office = tenants.office(tg, style=style)
    mark_id, rachel_id = office.mark.id, office.rachel.id
    mark = phone(tg, sip, "mark", office.mark)
    before = {a: records.balance(a) for a in (mark_id, rachel_id)}
    call = dial(tg, mark, TOLL)
    leg = enter_code_and_reach_gateway(tg, sip, gateway, call, "4545")
    # the gateway sees the dialed number, none of the internal headers, rtpengine's media
    assert leg.header("To").find(TOLL) >= 0
    assert not [h for h in leg.headers if h.startswith("x-tg-")]
    s = tg.settings
    assert s.rtp_port_min <= media_port(leg.request) <= s.rtp_port_max
    leg.play(make_tone(log_dir("tone") / "tone.wav"))
    sip.wait_for(lambda: call.rx_packets() > 50, 15, "the gateway's audio reaching Mark")
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the gateway")

    rows = records.settled_xdrs(call.call_id, 2)
    assert [(leg_, acct) for leg_, acct, *_ in rows] == [("ivr", mark_id), ("toll", rachel_id)]
    _, _, cld, duration, amount = rows[1]
    assert cld == TOLL and duration >= 1
    assert amount == charge(NORTH_AMERICA, duration) == Decimal("0.02")
    assert records.balance(rachel_id) - before[rachel_id] == amount
    assert records.balance(mark_id) == before[mark_id]  # the IVR leg is free: no IN rating


def test_rachel_calls_jake_and_a_toll_free_number_without_a_code(
        tg, sip, gateway, records, calls_end, office):
    rachel = phone(tg, sip, "rachel", office.rachel)
    jake = phone(tg, sip, "jake", office.jake)
    to_jake = dial(tg, rachel, office.jake.id)
    at_jake = jake.wait_incoming(15)
    sip.wait_for(lambda: to_jake.confirmed, 15, "Jake answering")
    to_free = dial(tg, rachel, TOLL_FREE)
    out = gateway.wait_incoming(15)
    sip.wait_for(lambda: to_free.confirmed, 10, "toll-free call answered")
    assert TOLL_FREE in out.header("To")
    talking(sip, to_jake, at_jake, to_free, out)
    to_jake.hangup_with()
    to_free.hangup_with()
    sip.wait_for(lambda: to_jake.disconnected and to_free.disconnected, 10, "hangups")
    onnet = records.settled_xdrs(to_jake.call_id, 1)
    free = records.settled_xdrs(to_free.call_id, 1)
    assert [r[:3] for r in onnet] == [("onnet", office.rachel.id, office.jake.id)]
    assert [r[:3] for r in free] == [("out", office.rachel.id, TOLL_FREE)]
    assert onnet[0][4] == free[0][4] == Decimal(0)


def test_the_readme_walkthrough_on_the_demo_tenant(tg, sip, gateway, records, calls_end):
    """README "Try it": Mark's phone calls Jake on-net without a code, then a toll number
    with Rachel's 4545; Rachel pays the toll leg, Mark's IVR leg is free."""
    mark = phone(tg, sip, "demo-mark", DEMO["mark"])
    jake = phone(tg, sip, "demo-jake", DEMO["jake"])
    to_jake = dial(tg, mark, DEMO["jake"][0])
    jake.wait_incoming(15)
    sip.wait_for(lambda: to_jake.confirmed, 15, "Jake answering without a code")
    to_jake.hangup_with()
    before = records.balance(DEMO["rachel"][0])
    call = dial(tg, mark, TOLL)
    leg = enter_code_and_reach_gateway(tg, sip, gateway, call, "4545")
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected and to_jake.disconnected, 10, "the hangups")
    assert [r[:2] for r in records.settled_xdrs(to_jake.call_id, 1)] == \
        [("onnet", DEMO["mark"][0])]
    rows = records.settled_xdrs(call.call_id, 2)
    assert [r[:2] for r in rows] == [("ivr", DEMO["mark"][0]), ("toll", DEMO["rachel"][0])]
    assert records.balance(DEMO["rachel"][0]) - before == rows[1][4] > 0


def test_operators_see_the_calls_in_prometheus(tg, sip, gateway, records, calls_end, office):
    """A toll call through the IVR and a refused call show in calls, refusals, IVR
    sessions, code attempts, cache and xDR writer metrics."""
    before = records.metrics()
    mark = phone(tg, sip, "mark-metrics", office.mark)
    call = dial(tg, mark, TOLL)
    enter_code_and_reach_gateway(tg, sip, gateway, call, "4545")
    call.hangup_with()
    refused = dial(tg, mark, "999")  # no rating entry: 403
    sip.wait_for(lambda: refused.disconnected and call.disconnected, 10, "the refusal")
    assert refused.last_code == 403
    records.settled_xdrs(call.call_id, 2)

    def grew(name: str, by: float = 1) -> bool:
        return records.metrics().get(name, 0) - before.get(name, 0) >= by

    # the writer counts an xDR just after committing it: the last of the counters to move
    sip.wait_for(lambda: grew("tollgate_xdr_processed_total", 2), 10, "2 xDRs counted")
    assert grew('tollgate_calls_total{outcome="ivr"}')
    assert grew('tollgate_calls_total{outcome="toll"}')
    assert grew('tollgate_refusals_total{code="403",reason="No rating for destination"}')
    assert grew("ivr_sessions_total")
    assert grew('ivr_code_attempts_total{result="valid"}')
    # a Kamailio worker hands its record cache's counters to Prometheus with its next
    # request, at most once a second: ask with OPTIONS until the hits show
    host, port = tg.settings.sip_address, tg.settings.sip_port
    sip.wait_for(lambda: sip_ping(host, port) and grew('tollgate_cache_total{result="hits"}'),
                 15, "record cache hits counted")
