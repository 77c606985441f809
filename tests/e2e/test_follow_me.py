"""Follow-me of a DID (second-number-service.txt, "Receiving an incoming call"): a call in
from the PSTN to an account whose answering mode forwards rings its follow-me numbers
through the gateway in order, each for its ring timeout; the far end sees the DID; the
forwarded leg is billed to the DID account at its rate and the incoming leg gets its own
xDR; numbers of the platform and calls already forwarded from the DID do not loop.

Real Kamailio, rtpengine, Redis, PostgreSQL and the xDR writer; the gateway is a pjsua2
phone that both places the PSTN call and receives the forwarded one.
"""
from __future__ import annotations

from decimal import Decimal

import pytest

from tests import tenants
from tests.calls import TOLL, from_the_pstn, phone, talking
from tollgate import keyspace

pytestmark = pytest.mark.e2e

BUSY_MOBILE = "12125550111"   # North America: 0.02/min per started minute (tests.tenants)
CALLER = "14165550123"


def forwarding(tg, office, person: str, follow_me: str,
               mode: str = "forward_then_voicemail") -> str:
    """Turn an office account into a forwarding DID (as an operator would, by the CLI)."""
    did = office.people[person].id
    tg.cli("account", "update", did, "--answering-mode", mode, "--follow-me", follow_me)
    return did


def next_invite(sip, gateway, count: int, call, timeout: float = 15):
    """The count-th forwarded INVITE at the gateway (the caller's answers if none came)."""
    try:
        leg = gateway.wait_incoming(timeout, count)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; the caller got {call.codes} {call.last_reason}") from None
    sip.wait_for(lambda: bool(leg.call_id), 5, "the forwarded INVITE")
    return leg


def billed_after_talking(sip, records, call, far, legs: int) -> list[tuple]:
    """Audio both ways, the caller hangs up: (leg, account, cld, amount) of each xDR."""
    talking(sip, call, far)
    call.hangup_with()
    sip.wait_for(lambda: far.disconnected, 10, "the BYE reaching the far end")
    rows = records.settled_xdrs(call.call_id, legs)
    return [(leg, account, cld, amount) for leg, account, cld, _, amount in rows]


def request_line(leg) -> str:
    return leg.request.split("\n", 1)[0]


def test_a_busy_first_number_makes_way_for_the_next_which_is_billed_to_the_did(
        tg, sip, gateway, records, calls_end):
    office = tenants.office(tg, "jake")
    did = forwarding(tg, office, "jake", f"{BUSY_MOBILE}/30,{TOLL}")
    gateway.answer = None  # the test answers each forwarded INVITE itself
    call = from_the_pstn(tg, gateway, did, CALLER)
    first = next_invite(sip, gateway, 1, call)
    assert BUSY_MOBILE in request_line(first)
    first.answer_with(486, "Busy Here")
    second = next_invite(sip, gateway, 2, call)
    assert TOLL in request_line(second)
    # the mobile sees the DID, and the call says where it was forwarded from
    for leg in (first, second):
        assert f"sip:{did}@" in leg.header("P-Asserted-Identity")
        assert f"sip:{did}@" in leg.header("Diversion")
    second.answer_with(200)
    sip.wait_for(lambda: call.confirmed, 10, "the caller connected to the follow-me number")
    talking(sip, call, second)
    call.hangup_with()
    sip.wait_for(lambda: second.disconnected, 10, "the BYE reaching the follow-me number")
    rows = records.settled_xdrs(call.call_id, 2)
    assert [(leg, account, cld) for leg, account, cld, _, _ in rows] == [
        ("in", did, did), ("out", did, TOLL)]
    incoming, forwarded = rows
    assert incoming[4] == 0  # the call in costs the DID nothing
    assert forwarded[4] == Decimal("0.02")  # one started minute at the DID's rate
    assert records.query("SELECT cli, access_code FROM xdrs WHERE call_id = %s ORDER BY leg",
                         call.call_id) == [(CALLER, "IN"), (did, "")]
    client = records.redis()
    assert not client.hexists(keyspace.reservations("account", did), call.call_id)


def test_a_number_that_rings_out_its_timeout_makes_way_for_the_next(
        tg, sip, gateway, records, calls_end):
    office = tenants.office(tg, "jake")
    did = forwarding(tg, office, "jake", f"{BUSY_MOBILE}/5,{TOLL}/20", mode="forward")
    gateway.answer = None
    call = from_the_pstn(tg, gateway, did, CALLER)
    first = next_invite(sip, gateway, 1, call)
    # left ringing: Kamailio gives up on it after its 5 s and cancels it
    second = next_invite(sip, gateway, 2, call)
    sip.wait_for(lambda: first.disconnected, 5, "the CANCEL of the first number")
    second.answer_with(200)
    sip.wait_for(lambda: call.confirmed, 10, "the caller connected")
    second.hangup_with()
    sip.wait_for(lambda: call.disconnected, 10, "the BYE reaching the caller")
    rows = records.settled_xdrs(call.call_id, 2)
    assert [(leg, cld) for leg, _, cld, _, _ in rows] == [("in", did), ("out", TOLL)]


def test_when_no_number_answers_the_caller_hears_the_last_answer_and_nothing_is_billed(
        tg, sip, gateway, records, calls_end):
    office = tenants.office(tg, "jake")
    did = forwarding(tg, office, "jake", f"{BUSY_MOBILE}/30,{TOLL}/30", mode="forward")
    gateway.answer, gateway.reason = 486, "Busy Here"
    call = from_the_pstn(tg, gateway, did, CALLER)
    sip.wait_for(lambda: call.disconnected, 15, "the caller's final answer")
    assert call.last_code == 486
    assert len(gateway.incoming) == 2  # both numbers were tried
    rows = records.settled_xdrs(call.call_id, 2)
    assert [(leg, duration, amount) for leg, _, _, duration, amount in rows] == [
        ("in", 0, 0), ("out", 0, 0)]
    client = records.redis()
    assert not client.hexists(keyspace.reservations("account", did), call.call_id)


def test_a_number_of_the_platform_is_skipped_as_a_loop(tg, sip, gateway, records, calls_end):
    office = tenants.office(tg, "jake", "mark")
    # Mark's number is a DID of this platform: the call would come back in and forward again
    did = forwarding(tg, office, "jake", f"{office.mark.id}/30,{TOLL}")
    before = records.metrics().get('tollgate_follow_me_total{outcome="loop"}', 0)
    call = from_the_pstn(tg, gateway, did, CALLER)
    leg = next_invite(sip, gateway, 1, call)
    assert TOLL in request_line(leg)
    sip.wait_for(lambda: call.confirmed, 10, "the caller connected to the next number")
    assert records.metrics().get('tollgate_follow_me_total{outcome="loop"}', 0) == before + 1
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "the BYE")


def test_a_call_already_forwarded_from_the_did_is_refused_as_a_loop(tg, sip, gateway,
                                                                      calls_end):
    office = tenants.office(tg, "jake")
    did = forwarding(tg, office, "jake", TOLL)
    # the PSTN sends back a call we forwarded: it names the DID in its Diversion header
    call = gateway.call(f"sip:{did}@{tg.sip_target}", headers={
        "Diversion": f"<sip:{did}@{tg.settings.sip_domain}>;reason=unconditional"})
    sip.wait_for(lambda: call.disconnected, 10, "the refusal")
    assert (call.last_code, call.last_reason) == (482, "Loop Detected")
    assert gateway.incoming == []


def test_an_account_that_rings_keeps_ringing_its_phones(tg, sip, gateway, calls_end):
    # follow-me numbers are kept, but only a forward mode uses them
    office = tenants.office(tg, "jake")
    did = forwarding(tg, office, "jake", TOLL, mode="ring")
    call = from_the_pstn(tg, gateway, did, CALLER)
    sip.wait_for(lambda: call.disconnected, 10, "the answer")
    assert call.last_code == 480  # no phone registered
    assert gateway.incoming == []


def test_the_dids_own_phone_rings_with_the_first_number_and_answering_it_is_a_call_in(
        tg, sip, gateway, records, calls_end):
    office = tenants.office(tg, "jake")
    did = forwarding(tg, office, "jake", f"{TOLL}/30")
    desk = phone(tg, sip, "jake-desk", office.jake)
    desk.answer = gateway.answer = None  # both ring; Jake picks up at his desk
    call = from_the_pstn(tg, gateway, did, CALLER)
    mobile = next_invite(sip, gateway, 1, call)
    at_desk = desk.wait_incoming(15)
    # the desk phone sees who calls; the mobile sees the DID
    assert "Diversion" not in at_desk.request and f"sip:{did}@" not in \
        at_desk.header("P-Asserted-Identity")
    assert f"sip:{did}@" in mobile.header("P-Asserted-Identity")
    at_desk.answer_with(200)
    sip.wait_for(lambda: call.confirmed, 10, "the caller connected to the desk phone")
    sip.wait_for(lambda: mobile.disconnected, 10, "the CANCEL of the mobile")
    assert billed_after_talking(sip, records, call, at_desk, 1) == [("in", did, did, 0)]
    assert records.query("SELECT cli, access_code FROM xdrs WHERE call_id = %s",
                         call.call_id) == [(CALLER, "IN")]
    client = records.redis()
    assert not client.hexists(keyspace.reservations("account", did), call.call_id)


def test_a_colleague_calling_the_did_from_the_platform_is_forwarded_too(
        tg, sip, gateway, records, calls_end):
    office = tenants.office(tg, "jake", "mark")
    did = forwarding(tg, office, "jake", f"{TOLL}/30")
    mark = phone(tg, sip, "mark-desk", office.mark)
    call = mark.call(f"sip:{did}@{tg.sip_target}")
    leg = next_invite(sip, gateway, 1, call)
    assert TOLL in request_line(leg) and f"sip:{did}@" in leg.header("P-Asserted-Identity")
    sip.wait_for(lambda: call.confirmed, 10, "Mark connected to Jake's mobile")
    # Mark's own call stays an on-net one (free); Jake's DID pays the forwarded minute
    assert billed_after_talking(sip, records, call, leg, 2) == [
        ("onnet", office.mark.id, did, 0), ("out", did, TOLL, Decimal("0.02"))]


def test_numbers_that_ring_together_all_ring_at_once_and_the_one_that_answers_is_billed(
        tg, sip, gateway, records, calls_end):
    office = tenants.office(tg, "jake")
    did = forwarding(tg, office, "jake", f"{BUSY_MOBILE}/30,{TOLL}/30", mode="forward")
    tg.cli("account", "update", did, "--follow-me-order", "simultaneous")
    gateway.answer = None
    call = from_the_pstn(tg, gateway, did, CALLER)
    legs = [next_invite(sip, gateway, 1, call), next_invite(sip, gateway, 2, call)]
    by_number = {number: leg for leg in legs for number in (BUSY_MOBILE, TOLL)
                 if number in request_line(leg)}
    assert set(by_number) == {BUSY_MOBILE, TOLL}  # both ring, neither waits for the other
    for leg in legs:
        assert f"sip:{did}@" in leg.header("P-Asserted-Identity")
    by_number[TOLL].answer_with(200)  # the second number of the list answers
    sip.wait_for(lambda: call.confirmed, 10, "the caller connected")
    sip.wait_for(lambda: by_number[BUSY_MOBILE].disconnected, 10, "the other one cancelled")
    assert billed_after_talking(sip, records, call, by_number[TOLL], 2) == [
        ("in", did, did, 0), ("out", did, TOLL, Decimal("0.02"))]
    client = records.redis()
    assert not client.hexists(keyspace.reservations("account", did), call.call_id)
