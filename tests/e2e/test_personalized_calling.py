"""Personalized calling (personalized-cloud-pbx-calling.txt, personalized-ip-centrex-calling.txt)
through the real stack: Kamailio + KEMI, rtpengine, the pjsua2 IVR, the xDR writer.

The demo tenant (demo/smart-calls.yaml): Rachel 17785551209 (PIN 4545), Mark 17785551210
(PIN 8989), Jake 17785551211, associated number 1778555, all calling via "Roaming PIN";
toll numbers under 1 cost 0.02/min billed per started minute, 1800... is toll-free.
"""
from __future__ import annotations

import re
from decimal import Decimal

import pytest

from billing.rating import Rate, charge
from tests.phones import make_tone
from tests.servers import log_dir

pytestmark = pytest.mark.e2e

TOLL = "12125550123"
TOLL_FREE = "18005550199"
NORTH_AMERICA = Rate(prefix="1", price_first=Decimal("0.02"), price_next=Decimal("0.02"),
                     interval_first=60, interval_next=60)
CLOUD_PBX = {"mark": ("17785551210", "mark-1210"), "rachel": ("17785551209", "rachel-1209"),
             "jake": ("17785551211", "jake-1211")}
CENTREX = {"mark": ("12065558888", "mark-8888"), "rachel": ("12065557777", "rachel-7777")}


def phone(tg, sip, name: str, who: tuple[str, str]):
    """A pjsua2 phone registered to Kamailio as `who` (account ID, SIP password)."""
    ph = sip.phone(name)
    code = ph.register(f"sip:{tg.sip_target}", who[0], who[1], tg.settings.sip_domain)
    assert code == 200, f"REGISTER {who[0]} got {code}"
    return ph


def dial(tg, ph, number: str):
    return ph.call(f"sip:{number}@{tg.sip_target}")


def media_port(sdp_message: str) -> int:
    return int(re.search(r"^m=audio (\d+)", sdp_message, re.M).group(1))


def enter_code_and_reach_gateway(sip, gateway, call, code: str):
    """Wait for the IVR to answer, key in the code, and return the toll leg at the gateway."""
    sip.wait_for(lambda: call.confirmed, 15, "the IVR answering")
    sip.sleep(0.5)
    call.send_dtmf(code)
    leg = gateway.wait_incoming(15)
    sip.wait_for(lambda: leg.confirmed, 10, "toll leg confirmed")
    return leg


@pytest.mark.parametrize("tenant", [CLOUD_PBX, CENTREX], ids=["cloud-pbx", "ip-centrex"])
def test_rachel_dials_a_toll_number_from_marks_phone_and_enters_4545(
        tg, sip, gateway, records, calls_end, tenant):
    mark_id, rachel_id = tenant["mark"][0], tenant["rachel"][0]
    mark = phone(tg, sip, "mark", tenant["mark"])
    before = {a: records.balance(a) for a in (mark_id, rachel_id)}
    call = dial(tg, mark, TOLL)
    leg = enter_code_and_reach_gateway(sip, gateway, call, "4545")
    # the gateway sees the dialed number, none of the internal headers, rtpengine's media
    assert leg.header("To").find(TOLL) >= 0
    assert not [h for h in leg.headers if h.startswith("x-tg-")]
    s = tg.settings
    assert s.rtp_port_min <= media_port(leg.request) <= s.rtp_port_max
    leg.play(make_tone(log_dir("tone") / "tone.wav"))
    sip.wait_for(lambda: call.rx_packets() > 50, 15, "the gateway's audio reaching Mark")
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the gateway")

    rows = records.wait_xdrs(call.call_id, 2)
    assert [(leg_, acct) for leg_, acct, *_ in rows] == [("ivr", mark_id), ("toll", rachel_id)]
    _, _, cld, duration, amount = rows[1]
    assert cld == TOLL and duration >= 1
    assert amount == charge(NORTH_AMERICA, duration) == Decimal("0.02")
    assert records.balance(rachel_id) - before[rachel_id] == amount
    assert records.balance(mark_id) == before[mark_id]  # the IVR leg is free: no IN rating


def test_rachel_calls_jake_and_a_toll_free_number_without_a_code(
        tg, sip, gateway, records, calls_end):
    rachel = phone(tg, sip, "rachel", CLOUD_PBX["rachel"])
    jake = phone(tg, sip, "jake", CLOUD_PBX["jake"])
    jake.answer = 200
    to_jake = dial(tg, rachel, CLOUD_PBX["jake"][0])
    sip.wait_for(lambda: to_jake.confirmed, 15, "Jake answering")
    to_free = dial(tg, rachel, TOLL_FREE)
    out = gateway.wait_incoming(15)
    sip.wait_for(lambda: to_free.confirmed, 10, "toll-free call answered")
    assert TOLL_FREE in out.header("To")
    sip.sleep(1.2)
    to_jake.hangup_with()
    to_free.hangup_with()
    sip.wait_for(lambda: to_jake.disconnected and to_free.disconnected, 10, "hangups")
    onnet = records.wait_xdrs(to_jake.call_id, 1)
    free = records.wait_xdrs(to_free.call_id, 1)
    assert [r[:3] for r in onnet] == [("onnet", CLOUD_PBX["rachel"][0], CLOUD_PBX["jake"][0])]
    assert [r[:3] for r in free] == [("out", CLOUD_PBX["rachel"][0], TOLL_FREE)]
    assert onnet[0][4] == free[0][4] == Decimal(0)


def test_operators_see_the_calls_in_prometheus(tg, sip, gateway, records, calls_end):
    """After the calls above: calls, refusals, IVR sessions, cache and xDR writer metrics."""
    import urllib.request
    rachel = phone(tg, sip, "rachel-metrics", CLOUD_PBX["rachel"])
    refused = dial(tg, rachel, "999")  # no rating entry: 403
    sip.wait_for(lambda: refused.disconnected, 10, "the refusal")
    assert refused.last_code == 403
    url = f"http://127.0.0.1:{tg.settings.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines()
                   if line and not line.startswith("#"))

    def value(name: str) -> float:
        return float(samples.get(name, "0"))

    assert value('tollgate_calls_total{outcome="ivr"}') >= 2
    assert value('tollgate_calls_total{outcome="toll"}') >= 2
    assert value('tollgate_refusals_total{code="403",reason="No rating for destination"}') >= 1
    assert value("ivr_sessions_total") >= 2
    assert value('ivr_code_attempts_total{result="valid"}') >= 2
    assert value('tollgate_cache_total{result="hits"}') > 0
    assert value("tollgate_xdr_processed_total") >= 4
