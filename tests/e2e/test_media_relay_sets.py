"""Media relay sets through the real stack: a client's calls are anchored only in its set's
rtpengine instances, fail over inside the set when one stops answering, and never move to
another set (refused instead). Each rtpengine has its own port range, so the port in the
SDP the gateway receives says which one relays the call."""
from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests import tenants
from tests.calls import TOLL, dial, phone
from tests.servers import free_port, kill_group, private_loopback
from tests.stack import Stack
from tollgate import config
from tollgate import stack as programs
from tollgate.net import wait_rtpengine

pytestmark = pytest.mark.e2e

# extra rtpengine instances: name -> first port of its 100-port range (between the CPS
# bench's rtpengine range and the IVR workers' media ranges of test stacks)
RANGES = {"blue-1": 18000, "blue-2": 18200, "red-1": 18400}


@pytest.fixture(scope="module")
def relays():
    """The instances of the sets, started before Kamailio (which pings them at start)."""
    ports = {name: free_port() for name in RANGES}
    address = private_loopback()  # media ports nobody else's rtpengine can share
    work = Path(tempfile.mkdtemp(prefix="relays-"))
    procs = {}
    for name, low in RANGES.items():
        s = dataclasses.replace(config.load(), rtpengine_address=address,
                                rtpengine_ng_port=ports[name], rtp_port_min=low,
                                dtmf_events_port=free_port(),
                                rtp_port_max=low + 99, var_dir=str(work / name))
        for sub in ("run", "recordings/spool"):
            (work / name / sub).mkdir(parents=True)
        prog = programs.rtpengine_program(s)
        procs[name] = subprocess.Popen(prog.command, cwd=work / name, start_new_session=True,
                                       stdout=open(work / f"{name}.log", "ab"),
                                       stderr=subprocess.STDOUT)
    for name, port in ports.items():
        assert wait_rtpengine(address, port), f"rtpengine {name} did not answer on {port}"
    yield ports, procs, address
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGCONT)
        kill_group(proc)


@pytest.fixture(scope="module")
def tg(relays):
    ports, _, at = relays
    sets = (f"blue={at}:{ports['blue-1']} {at}:{ports['blue-2']};"
            f"red={at}:{ports['red-1']}")
    stack = Stack(with_gateway=False, media_relay_sets=sets).start()
    yield stack
    stack.stop()


def relayed_by(leg) -> str:
    """The instance whose port range the gateway's SDP points at ("default" otherwise)."""
    port = int(re.search(r"^m=audio (\d+)", leg.request, re.M).group(1))
    return next((name for name, low in RANGES.items() if low <= port < low + 100), "default")


def call_out(tg, sip, gateway, ph):
    call = dial(tg, ph, TOLL)
    sip.wait_for(lambda: call.disconnected or gateway.incoming, 20, "the call placed")
    if call.disconnected:
        return call, None
    leg = gateway.incoming.pop()
    sip.wait_for(lambda: call.confirmed, 10, "the call answered")
    return call, leg


def hang_up(sip, call, leg) -> None:
    """BYE, and wait until the gateway has it: Kamailio is done with the call's media
    (an instance stopped right after would hold the BYE's delete, and the workers)."""
    call.hangup_with()
    sip.wait_for(lambda: call.disconnected and leg.disconnected, 15, "the call ended")


def test_calls_use_their_clients_set_and_fail_over_only_inside_it(
        tg, sip, gateway, relays, calls_end):
    _, procs, _ = relays
    # each call holds what its longest call costs (72.00): room for calls one after another
    blue = tenants.straight_out(tg, balance="1000.00", client={"media_relay_set": "blue"})
    red = tenants.straight_out(tg, balance="1000.00", client={"media_relay_set": "red"})
    plain = tenants.straight_out(tg, balance="1000.00")
    phones = {who: phone(tg, sip, f"relay-{who}", (t.account, t.password))
              for who, t in (("blue", blue), ("red", red), ("plain", plain))}
    seen = {who: set() for who in phones}
    for _ in range(4):
        for who, ph in phones.items():
            call, leg = call_out(tg, sip, gateway, ph)
            assert leg is not None, f"{who}: {call.last_code} {call.last_reason}"
            seen[who].add(relayed_by(leg))
            hang_up(sip, call, leg)
    assert seen["blue"] <= {"blue-1", "blue-2"} and seen["red"] == {"red-1"}
    assert seen["plain"] == {"default"}
    # one blue instance stops answering: blue calls go on through the other
    os.killpg(procs["blue-1"].pid, signal.SIGSTOP)
    for _ in range(3):
        call, leg = call_out(tg, sip, gateway, phones["blue"])
        assert leg is not None and relayed_by(leg) == "blue-2"
        hang_up(sip, call, leg)
    # the whole blue set is down: refused, never anchored in red's or the default set
    os.killpg(procs["blue-2"].pid, signal.SIGSTOP)
    call, leg = call_out(tg, sip, gateway, phones["blue"])
    assert leg is None and (call.last_code, call.last_reason) == (
        503, "Media relay unavailable")
    call, leg = call_out(tg, sip, gateway, phones["red"])   # other clients are unaffected
    assert leg is not None and relayed_by(leg) == "red-1"


def test_a_client_naming_a_set_the_settings_lack_is_refused(
        tg, sip, gateway, records, calls_end):
    """Provisioning refuses a set the settings lack; a set removed from the settings
    later (here: the row changed behind the CLI's back) refuses the client's calls."""
    ghost = tenants.straight_out(tg, client={"media_relay_set": "red"})
    records.query("UPDATE customers SET media_relay_set = 'green' WHERE name = %s"
                  " RETURNING id", ghost.customer)
    tg.cli("resync")
    ph = phone(tg, sip, "relay-ghost", (ghost.account, ghost.password))
    call, leg = call_out(tg, sip, gateway, ph)
    assert leg is None and call.last_code == 503
    assert "media relay set 'green', which the settings" in tg.log("kamailio")
