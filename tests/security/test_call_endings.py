"""Every way a paid call can end bills it once, under its real Call-ID, with the code the
caller got, never beyond its authorized maximum, and gives the payer's reservation back.

Fault matrix, billing side, on the real stack. Each case makes its own debit account that
calls straight out (no IVR) on a per-second tariff (0.60/min, 1/1: 0.01 a second, so a
balance of B affords 100*B seconds), dials a toll number, ends the call one way, and
checks: exactly one xDR, its call_id the call's SIP Call-ID, its sip_code what the caller
got, its duration within what happened and within the cap, the debit equal to its charge,
nothing left in the account's reservations hash, and the account's next call reaching
the gateway at once (a reservation left behind would refuse it with 402).

Callers are pjsua2 phones, or sipp where a phone cannot misbehave (no ACK, vanishing);
the PSTN gateway is a sipp UAS per call (tests/sipp/ending-gw-*.xml). Kamailio's timers
(kamailio.cfg) set the slow cases: fr_timer (30 s) answers a gateway that never answers
with 408, and a vanished caller is found by keepalive OPTIONS (every 30 s, ka_timer 10 s)
that time out after fr_timer. The no-ACK case uses a cap shorter than noack_timeout: the
dialog module applies that only on its clean-up run every 90 s, 30 to 120 s after the 2xx.
"""
from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Callable, NamedTuple

import pytest
import redis

from provisioning.xdr_writer import GROUP
from tests import sipp
from tests.calls import phone
from tests.phones import Phone, PhoneCall, SipStack
from tests.records import Records
from tests.security import rawsip
from tests.servers import free_port, kill_group, log_dir
from tests.stack import Stack, _udp_free
from tollgate import keyspace

pytestmark = pytest.mark.e2e

CUSTOMER, TARIFF, PRODUCT = "Call Endings Co", "Call Endings per second", "Call Endings Direct"
PRICE = Decimal("0.60")                      # per minute, 1/1 intervals
PER_SECOND = PRICE / 60                      # 0.01
DIALED = "12125550123"                       # prefix 1: paid, leaves through the gateway

# Kamailio's timers (kamailio.cfg): tm's fr_timer; the dialog module's noack_timeout, its
# keepalive interval and timer, and the 10 s it gives a dialog it has decided to end
FR_TIMER = 30
NOACK_TIMEOUT, DLG_END_GRACE = 20, 10
KA_INTERVAL, KA_TIMER = 30, 10
SLACK = 5
# the latest a call ends once its caller vanished: the first keepalive OPTIONS (interval,
# then the next keepalive run) times out, the dialog ends 10 s later; three timers in a
# row, each late by up to a tick: twice the slack
KEEPALIVE_DEADLINE = KA_INTERVAL + KA_TIMER + FR_TIMER + DLG_END_GRACE + 2 * SLACK


class Xdr(NamedTuple):
    call_id: str
    session_id: str
    leg: str
    sip_code: int
    duration: int
    amount: Decimal
    reason: str


@dataclass(frozen=True)
class Account:
    """A debit account that calls straight out; `cap` is the longest call it can pay."""
    id: str
    password: str
    opening: Decimal

    @property
    def cap(self) -> int:
        return int(self.opening / PER_SECOND)


def charge(seconds: int) -> Decimal:
    """What `seconds` of a call cost on the per-second tariff."""
    return (seconds * PER_SECOND).quantize(Decimal("0.00001"))


@pytest.fixture(scope="module")
def tariff(tg):
    """The customer, per-second tariff and product every case's account uses."""
    tg.cli("customer", "create", CUSTOMER, "--currency", "USD")
    tg.cli("tariff", "create", TARIFF, "--currency", "USD")
    tg.cli("rate", "create", TARIFF, "1", "--price", str(PRICE), "--interval", "1/1")
    tg.cli("product", "create", PRODUCT, "--currency", "USD", "--rating", TARIFF)


def paid_account(tg: Stack, balance: str) -> Account:
    """A new debit account with `balance` that dials paid numbers straight out."""
    ident = f"ending-{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex[:12]
    tg.cli("account", "create", ident, "--customer", CUSTOMER, "--product", PRODUCT,
           "--password", password, "--billing-model", "debit", "--balance", balance)
    return Account(ident, password, Decimal(balance))


@dataclass
class Sipp:
    """A sipp process of one case (gateway or caller) and what it logged."""
    proc: subprocess.Popen
    logs: Path
    messages: Path
    call_id: str = ""

    def finished(self) -> bool:
        return self.proc.poll() is not None

    def reached(self, marker: str) -> bool:
        """The scenario touched ./<marker> (its <exec> actions)."""
        return (self.logs / marker).exists()

    def vanish(self) -> None:
        """SIGKILL: gone at once, nothing sent, nothing answered."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)

    def story(self) -> str:
        """What a failed assertion shows where the log files cannot be read (CI): the
        exit code, each message's time and first line, and sipp's own complaints."""
        trace = self.messages.read_text(errors="replace") if self.messages.exists() else ""
        lines = [f"sipp exit {self.proc.returncode}, logs in {self.logs}"]
        for stamp, first in STARTS.findall(trace)[-24:]:
            lines.append(f"  {stamp} {first.strip()}")
        for extra in sorted({*self.logs.glob("*stderr.log"), *self.logs.glob("*errors.log")}):
            text = extra.read_text(errors="replace").strip()
            if text:
                lines.append(f"  {extra.name}: {text[-600:]}")
        return "\n".join(lines)

    def got_bye(self) -> bool:
        """The scenario ran to its end (it waits for a BYE and answers it), having got one."""
        return self.proc.returncode == 0 and \
            "BYE sip:" in self.messages.read_text(errors="replace")


class Peers:
    """The phones and sipp processes of one case; all of them end with it."""

    def __init__(self, tg: Stack, sip: SipStack):
        self.tg, self.sip = tg, sip
        self.sipps: list[Sipp] = []
        self.phones: list[Phone] = []

    def gateway(self, scenario: str, extra: tuple[str, ...] = ()) -> Sipp:
        """The PSTN gateway for one call: a sipp UAS playing tests/sipp/<scenario>.xml."""
        port = self.tg.gateway_port
        self.sip.wait_for(lambda: _udp_free(port), 10, "the previous gateway leaving its port")
        logs = log_dir(scenario)
        gw = Sipp(sipp.uas(port, logs, extra=["-m", "1", *extra], scenario=scenario), logs,
                  logs / "gateway-messages.log")
        self.sipps.append(gw)
        self.sip.wait_for(lambda: not _udp_free(port) or gw.finished(), 10,
                          f"sipp {scenario} listening")
        assert not gw.finished(), f"sipp {scenario} did not start, logs in {logs}"
        return gw

    def phone(self, account: Account) -> Phone:
        ph = phone(self.tg, self.sip, account.id, (account.id, account.password))
        self.phones.append(ph)
        return ph

    def caller(self, scenario: str, account: Account) -> Sipp:
        """A sipp caller as `account` dialing DIALED in the background, its Call-ID known."""
        logs = log_dir(scenario)
        call_id = f"{uuid.uuid4().hex}@ending"
        args = ["sipp", self.tg.sip_target, "-sf", str(sipp.SCENARIOS / f"{scenario}.xml"),
                "-i", "127.0.0.1", "-p", str(free_port()), "-m", "1", "-nostdin", "-nd",
                "-s", DIALED, "-key", "caller", account.id,
                "-au", account.id, "-ap", account.password, "-cid_str", call_id,
                "-trace_err", "-error_file", str(logs / "errors.log"),
                "-trace_msg", "-message_file", str(logs / "messages.log")]
        proc = subprocess.Popen(args, cwd=logs, stdout=subprocess.DEVNULL,
                                stderr=open(logs / "stderr.log", "wb"), start_new_session=True)
        uac = Sipp(proc, logs, logs / "messages.log", call_id)
        self.sipps.append(uac)
        return uac

    def close(self) -> None:
        for one in self.sipps:
            kill_group(one.proc)
        self.sip.hangup_all()
        for ph in self.phones:
            self.sip.remove(ph)


@pytest.fixture
def peers(tg, sip, tariff):
    found = Peers(tg, sip)
    yield found
    found.close()


def poll(sip: SipStack, check: Callable[[], object], timeout: float, what: str,
         every: float = 0.25):
    """Run the phones until check() returns something truthy (checked every `every` s)."""
    found: list[object] = []
    next_check = 0.0

    def ready() -> bool:
        nonlocal next_check
        if time.monotonic() < next_check:
            return False
        next_check = time.monotonic() + every
        value = check()
        if value:
            found.append(value)
        return bool(value)

    sip.wait_for(ready, timeout, what)
    return found[0]


def dialog_alive(tg: Stack, call_id: str) -> bool:
    """Kamailio still holds a live dialog for this Call-ID (kamcmd over the ctl socket)."""
    sock = f"unix:{tg.settings.var_path / 'run' / 'kamailio_ctl'}"
    out = subprocess.run(["kamcmd", "-s", sock, "dlg.list_match", "callid", "eq", call_id],
                         capture_output=True, text=True, timeout=10).stdout
    if "404" in out and "Not found" in out:
        return False
    states = [line.split(":", 1)[1].strip() for line in out.splitlines()
              if line.strip().startswith("state:")]
    return any(state != "5" for state in states)  # 5: deleted, waiting to be freed


def writer_caught_up(tg: Stack) -> bool:
    """The xDR writer has billed and acked every event Kamailio sent so far."""
    client = redis.Redis(port=tg.settings.redis_port)
    try:
        for group in client.xinfo_groups(keyspace.XDR_STREAM):
            if group["name"] == GROUP.encode():
                return group["pending"] == 0 and (group.get("lag") or 0) == 0
        return False
    finally:
        client.close()


def xdrs(records, account: Account) -> list[Xdr]:
    rows = records.query("SELECT call_id, session_id, leg, sip_code, duration, amount, reason "
                         "FROM xdrs WHERE account_id = %s ORDER BY id", account.id)
    return [Xdr(*row) for row in rows]


def settled(tg: Stack, sip: SipStack, records, account: Account, call_id: str,
            timeout: float, what: str) -> list[Xdr]:
    """The account's xDRs once the call has left Kamailio and every event is billed."""
    return poll(sip, lambda: (xdrs(records, account) if not dialog_alive(tg, call_id)
                              and writer_caught_up(tg) else None), timeout, what)


def reserved(tg: Stack, sip: SipStack, account: Account, timeout: float = 5.0) -> dict:
    """What the account's reservations hash still holds once the writer had time to release it."""
    client = redis.Redis(port=tg.settings.redis_port, decode_responses=True)
    key = keyspace.reservations("account", account.id)
    try:
        poll(sip, lambda: not client.hgetall(key), timeout, "the reservation released")
    except TimeoutError:
        pass
    try:
        return client.hgetall(key)
    finally:
        client.close()


def check_bill(tg, sip, records, account: Account, call_id: str, sip_code: int,
               rows: list[Xdr], shortest: int, longest: int) -> Xdr:
    """One xDR under the real Call-ID and code, charged for a duration in
    [shortest, longest] (never past the cap), debited, its reservation released."""
    assert rows, "no xDR"
    bill = rows[0]
    facts = {"xDRs": len(rows), "call_id": bill.call_id, "sip_code": bill.sip_code,
             "leg": bill.leg, "amount": bill.amount, "balance": records.balance(account.id),
             "reserved": reserved(tg, sip, account)}
    assert facts == {"xDRs": 1, "call_id": call_id, "sip_code": sip_code, "leg": "out",
                     "amount": charge(bill.duration),
                     "balance": account.opening - charge(bill.duration), "reserved": {}}
    longest = min(longest, account.cap)
    assert shortest <= bill.duration <= longest, \
        f"billed {bill.duration} s, the call lasted {shortest}..{longest} s (cap {account.cap})"
    return bill


def next_call_is_accepted(tg, sip, records, peers: Peers, account: Account,
                          caller: Phone | None = None) -> None:
    """The account's next call reaches the gateway at once (its busy line answers 486).
    What the last call spent is topped up first, so a reservation it left behind is
    exactly what would refuse this one (402)."""
    spent = account.opening - records.balance(account.id)
    if spent > 0:
        tg.cli("balance", "adjust", account.id, str(spent))
    peers.gateway("ending-gw-busy")
    call = dial(tg, caller or peers.phone(account))
    sip.wait_for(lambda: call.disconnected, 15, "the next call's answer")
    assert call.last_code == 486, \
        f"the account's next call got {call.last_code}, not the gateway's busy 486"


def no_call_in_progress(sip: SipStack, records: Records) -> None:
    """tollgate_active_calls back to 0 once the calls of every case have ended: a call
    Kamailio timed out (and BYEd on both sides) counts as ended exactly once."""
    seen: list[float | None] = []
    try:
        sip.wait_for(lambda: seen.append(records.metrics().get("tollgate_active_calls"))
                     or seen[-1] == 0, 10, "the active-calls gauge at 0")
    except TimeoutError:
        pytest.fail(f"tollgate_active_calls is {seen[-1]} with no call in progress")


def finish(sip: SipStack, one: Sipp, timeout: float = 10) -> None:
    """Give a sipp scenario `timeout` s to run to its end (the test judges how it ended)."""
    try:
        poll(sip, one.finished, timeout, "sipp finishing its scenario")
    except TimeoutError:
        pass


RECEIVED = re.compile(r"^-{20,} (\S+ \S+)\nUDP message received[^\n]*\n\n(.*?)(?=^-{20,} |\Z)",
                      re.MULTILINE | re.DOTALL)
STARTS = re.compile(r"^-{20,} (\S+ \S+)\n(?:UDP message \w+[^\n]*\n\n)?([^\n]*)", re.MULTILINE)
FORGER = rawsip.Sources(44)  # loopback sources of forged replies
SILENCE = 1.0  # s without a datagram taken as "not relayed"
TM_WAIT = 5  # s tm keeps an answered INVITE's transaction (wt_timer): later 2xx are stray


class Answer(NamedTuple):
    at: datetime
    media: str  # the SDP's m= line
    text: str


def answers_received(one: Sipp) -> list[Answer]:
    """The 2xx to its INVITE a sipp caller got, in order (its message trace)."""
    found = []
    for stamp, text in RECEIVED.findall(one.messages.read_text(errors="replace")):
        media = re.search(r"^m=.*$", text, re.MULTILINE)
        if text.startswith("SIP/2.0 200") and re.search(r"^CSeq: *\d+ INVITE", text, re.M):
            found.append(Answer(datetime.fromisoformat(stamp), media[0] if media else "", text))
    return found


def aimed_answer(tg: Stack, answer: Answer, victim: rawsip.Endpoint) -> bytes:
    """A call's 2xx as a party to it could forge one: the proxy's Via on top (it forwards
    replies to the Via under its own), the victim's address under it."""
    vias = [f"Via: SIP/2.0/UDP {tg.settings.sip_address}:{tg.settings.sip_port};"
            f"branch=z9hG4bKaimed{uuid.uuid4().hex[:8]}",
            f"Via: SIP/2.0/UDP {victim.address}:{victim.port};branch=z9hG4bKvictim"]
    head, _, body = answer.text.replace("\r\n", "\n").partition("\n\n")
    body = body.strip("\n").replace("\n", "\r\n") + "\r\n"  # sipp's trace drops the CRs
    kept = [line for line in head.split("\n")
            if not line.lower().startswith(("via:", "v:", "content-length:"))]
    return "\r\n".join([kept[0], *vias, *kept[1:], f"Content-Length: {len(body)}", "",
                          body]).encode()


def answer_reaches(tg: Stack, answer: Answer, host: str, sender: str) -> bool:
    """Whether the proxy relays a copy of the call's 2xx, sent from `sender`, to a socket
    on `host`."""
    with rawsip.Endpoint((tg.settings.sip_address, tg.settings.sip_port), host) as victim, \
            rawsip.Endpoint((tg.settings.sip_address, tg.settings.sip_port), sender) as forger:
        forger.send(aimed_answer(tg, answer, victim))
        return victim.wait_final(SILENCE) is not None


def dial(tg: Stack, caller: Phone) -> PhoneCall:
    return caller.call(f"sip:{DIALED}@{tg.sip_target}")


# --- answered calls that end with a BYE -----------------------------------------------

@pytest.mark.parametrize("who", ["caller", "callee"])
def test_an_answered_call_ended_by_a_bye_is_billed_for_its_length(
        tg, sip, records, peers, who):
    account = paid_account(tg, "0.50")                  # cap 50 s
    gateway = peers.gateway("ending-gw-answer" if who == "caller" else "ending-gw-hangup")
    caller = peers.phone(account)
    dialed = time.monotonic()
    call = dial(tg, caller)
    sip.wait_for(lambda: call.confirmed, 10, "the gateway answering")
    if who == "caller":
        confirmed = time.monotonic()
        sip.sleep(2.0)                                   # the call's length
        shortest = int(time.monotonic() - confirmed)
        call.hangup_with()
    else:
        shortest = 2                                     # the gateway hangs up 2 s after ACK
    sip.wait_for(lambda: call.disconnected, 15, f"the {who}'s BYE ending the call")
    finish(sip, gateway)
    ended = time.monotonic()
    if who == "caller":
        assert gateway.got_bye(), f"the caller's BYE did not reach the gateway: {gateway.story()}"
    else:
        assert gateway.proc.returncode == 0, f"the gateway's BYE went unanswered: {gateway.story()}"

    rows = settled(tg, sip, records, account, call.call_id, 20, "the call's xDR")
    check_bill(tg, sip, records, account, call.call_id, 200, rows,
               shortest, math.ceil(ended - dialed))
    next_call_is_accepted(tg, sip, records, peers, account, caller)


def test_at_the_hard_cap_the_proxy_hangs_up_both_sides_and_bills_the_maximum(
        tg, sip, records, peers):
    account = paid_account(tg, "0.06")                  # cap 6 s, costing all 0.06
    gateway = peers.gateway("ending-gw-answer")
    caller = peers.phone(account)
    call = dial(tg, caller)
    sip.wait_for(lambda: call.confirmed, 10, "the gateway answering")
    # neither side hangs up: Kamailio's dialog timer must BYE both at the cap
    sip.wait_for(lambda: call.disconnected, account.cap + 10, "Kamailio's BYE to the caller")
    finish(sip, gateway)
    assert gateway.got_bye(), f"the gateway got no BYE at the cap: {gateway.story()}"

    rows = settled(tg, sip, records, account, call.call_id, 20, "the capped call's xDR")
    check_bill(tg, sip, records, account, call.call_id, 200, rows, account.cap, account.cap)
    no_call_in_progress(sip, records)
    next_call_is_accepted(tg, sip, records, peers, account, caller)


# --- calls that are never answered ----------------------------------------------------

@pytest.mark.parametrize("scenario, code", [("ending-gw-ring", 487),
                                            ("ending-gw-busy", 486),
                                            ("ending-gw-silent", 408)],
                         ids=["cancel-while-ringing", "busy", "no-answer"])
def test_an_unanswered_call_costs_nothing_and_carries_the_callers_code(
        tg, sip, records, peers, scenario, code):
    account = paid_account(tg, "0.50")
    gateway = peers.gateway(scenario)
    caller = peers.phone(account)
    call = dial(tg, caller)
    if scenario == "ending-gw-ring":
        sip.wait_for(lambda: 180 in call.codes, 10, "ringback")
        call.hangup_with()                               # CANCEL
    # a gateway that sends nothing leaves the caller to Kamailio's fr_timer: a local 408
    sip.wait_for(lambda: call.disconnected, FR_TIMER + 10, f"the caller getting {code}")
    assert call.last_code == code
    if scenario == "ending-gw-silent":
        kill_group(gateway.proc)                         # it never stops on its own

    rows = settled(tg, sip, records, account, call.call_id, 20, "the unanswered call's xDR")
    check_bill(tg, sip, records, account, call.call_id, code, rows, 0, 0)
    next_call_is_accepted(tg, sip, records, peers, account, caller)


# --- callers that stop taking part ----------------------------------------------------

def test_a_caller_that_never_acks_the_answer_is_cut_off_at_its_cap(tg, sip, records, peers):
    # a cap shorter than the earliest no-ACK clean-up (noack_timeout 20 s, applied by the
    # dialog module's run every 90 s, plus 10 s): only the hard cap can end the call in time
    account = paid_account(tg, "0.15")                   # cap 15 s
    assert account.cap < NOACK_TIMEOUT + DLG_END_GRACE
    gateway = peers.gateway("ending-gw-answer")
    dialed = time.monotonic()
    uac = peers.caller("ending-uac-no-ack", account)
    poll(sip, lambda: uac.reached("answered") or uac.finished(), 15,
         "the gateway's 200 reaching the caller")
    assert uac.reached("answered"), f"the no-ACK caller was not answered: {uac.story()}"
    # a late 2xx goes only from the callee's host (the gateway's, 127.0.0.1) to the host
    # the INVITE came from (127.0.0.1 too): one aimed at another host, or sent from
    # another host (its SDP would move the callee side of the relay), is not relayed
    first = answers_received(uac)[0]
    assert not answer_reaches(tg, first, "127.0.44.200", "127.0.0.1"), \
        "a 2xx was relayed to a victim"
    assert not answer_reaches(tg, first, "127.0.0.1", FORGER.next()), \
        "a 2xx from a host that is not the callee's was relayed"
    assert answer_reaches(tg, first, "127.0.0.1", "127.0.0.1"), \
        "a late 2xx from the callee's host to the caller's was lost"
    try:
        rows = settled(tg, sip, records, account, uac.call_id, account.cap + SLACK,
                       "the unacknowledged call ending at its cap")
    except TimeoutError:
        pytest.fail(f"the unacknowledged call was still up {account.cap + SLACK} s after "
                    f"its answer, past its {account.cap} s cap (dialog alive: "
                    f"{dialog_alive(tg, uac.call_id)}, xDRs: {xdrs(records, account)})")
    ended = time.monotonic()
    finish(sip, gateway)
    assert gateway.got_bye(), f"the gateway leg was not hung up at the cap: {gateway.story()}"
    check_bill(tg, sip, records, account, uac.call_id, 200, rows,
               0, math.ceil(ended - dialed))
    no_call_in_progress(sip, records)
    # the gateway resent its 200 (0.5, 1.5, 3.5, 7.5, 11.5 s...): those after tm forgot
    # the INVITE reached the caller too (RFC 6026), their SDP the relay's as the first's
    answers = answers_received(uac)
    late = [a for a in answers if (a.at - answers[0].at).total_seconds() > TM_WAIT + 1]
    assert late, f"no resent 200 reached the caller after {TM_WAIT} s: {uac.messages}"
    assert {a.media for a in late} == {answers[0].media}, answers
    next_call_is_accepted(tg, sip, records, peers, account)


def test_a_caller_that_vanishes_mid_call_is_cut_off_by_keepalive_not_the_cap(
        tg, sip, records, peers):
    account = paid_account(tg, "1.50")                   # cap 150 s, past the keepalive
    gateway = peers.gateway("ending-gw-answer")
    dialed = time.monotonic()
    uac = peers.caller("ending-uac-vanish", account)
    poll(sip, lambda: uac.reached("up") or uac.finished(), 15, "the call up")
    assert uac.reached("up"), f"the vanishing caller's call never came up: {uac.story()}"
    uac.vanish()                                         # gone: no BYE, no answers
    try:
        rows = settled(tg, sip, records, account, uac.call_id, KEEPALIVE_DEADLINE,
                       "keepalive ending the vanished caller's call")
    except TimeoutError:
        pytest.fail(f"the vanished caller's call was still up {KEEPALIVE_DEADLINE} s later "
                    f"(dialog alive: {dialog_alive(tg, uac.call_id)}): no keepalive ended "
                    f"it, it runs on to its {account.cap} s cap")
    ended = time.monotonic()
    finish(sip, gateway)
    assert gateway.got_bye(), f"the gateway leg was never hung up: {gateway.story()}"
    check_bill(tg, sip, records, account, uac.call_id, 200, rows,
               0, math.ceil(ended - dialed))
    next_call_is_accepted(tg, sip, records, peers, account)
