"""Pass-through IVR with real pjsua2 phones, the real IVR process and a real Redis.

Mark's phone (17785551210) reaches the IVR through a signing relay that plays Kamailio's
part; the "gateway" phone plays Kamailio on the toll leg the IVR sends back.
Rachel (17785551209) owns the code 4545: alias 1778555#4545.
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import msgpack
import pytest

from billing import internal
from tests.phones import INFO, SigningRelay, SipStack, make_tone, rms, tone_fraction
from tests.servers import LOG_ROOT, free_port, kill_group, log_dir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MARK, RACHEL, DEST = "17785551210", "17785551209", "442071234567"
SECRET = secrets.token_hex(16)
PROMPTS = LOG_ROOT / "prompts"
APP = {"authorize_paid_calls": True, "auth_code_as_account_id": True,
       "use_associated_number": True, "min_auth_code_length": 4, "max_auth_code_length": 4,
       "max_login_attempts": 3, "confirm_by_pound": False, "default_prompt_timeout": 3,
       "brand_prompts": "", "lockout_failures": 5, "lockout_seconds": 300}


def account(account_id: str, customer_id: int, associated: str) -> dict:
    return {"id": account_id, "customer_id": customer_id, "product_id": 1, "password": "x",
            "service_password": "", "associated_number": associated, "ivr_app_id": 1,
            "language": "en", "blocked": False, "billing_model": "credit",
            "credit_limit": None, "answering_mode": "ring", "follow_me": [],
            "expires": None, "first_use": None}


def put(redis_client, key: str, value: dict) -> None:
    redis_client.set(key, msgpack.packb(value, use_bin_type=True))


def set_app(redis_client, **settings: object) -> None:
    put(redis_client, "tg:app:1", {"id": 1, "name": "Roaming PIN", "type": "pass_through",
                                   "settings": {**APP, **settings}, "access_numbers": []})


@pytest.fixture
def records(redis_client):
    """Smart Calls (Mark, Rachel) and another customer whose account has code 6666."""
    put(redis_client, f"tg:account:{MARK}", account(MARK, 1, "1778555"))
    put(redis_client, f"tg:account:{RACHEL}", account(RACHEL, 1, "1778555"))
    put(redis_client, "tg:account:4420999", account("4420999", 2, "1778555"))
    for code, owner in (("4545", RACHEL), ("8989", MARK), ("6666", "4420999")):
        put(redis_client, f"tg:alias:1778555#{code}",
            {"id": f"1778555#{code}", "account_id": owner, "allow_auth": False})
    set_app(redis_client)
    return redis_client


@pytest.fixture(scope="module")
def stack():
    return SipStack.get()


@pytest.fixture(scope="module")
def gateway(stack):
    """The toll leg's far end, standing where Kamailio listens."""
    phone = stack.phone("gateway")
    yield phone
    stack.remove(phone)


class Ivr:
    def __init__(self, proc: subprocess.Popen, port: int, log: Path, metrics_port: int):
        self.proc, self.port, self.log, self.metrics_port = proc, port, log, metrics_port

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, stack: SipStack, needle: str, timeout: float = 10) -> None:
        stack.wait_for(lambda: needle in self.text(), timeout, f"IVR log line {needle!r}")


@pytest.fixture(scope="module")
def ivr(redis_server, gateway, stack):
    logs = log_dir("ivr")
    port = free_port(socket.SOCK_DGRAM)
    (logs / "tollgate.toml").write_text("")
    env = {**os.environ, "TOLLGATE_CONFIG": str(logs / "tollgate.toml"),
           "TOLLGATE_IVR_SIP_PORT": str(port),
           "TOLLGATE_IVR_MEDIA_PORT": str(20000 + 2 * (port % 4000)),
           "TOLLGATE_SIP_ADDRESS": "127.0.0.1", "TOLLGATE_SIP_PORT": str(gateway.port),
           "TOLLGATE_REDIS_PORT": str(redis_server.port), "TOLLGATE_INTERNAL_SECRET": SECRET,
           "TOLLGATE_VAR_DIR": str(logs), "PYTHONPATH": str(ROOT)}
    log = logs / "ivr.log"
    metrics_port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ivr.server", "--prompts", str(PROMPTS),
                                 "--pj-log-level", "3", "--metrics-port", str(metrics_port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = Ivr(proc, port, log, metrics_port)
    deadline = time.monotonic() + 60
    while "START:" not in server.text():
        assert proc.poll() is None and time.monotonic() < deadline, f"IVR did not start: {log}"
        time.sleep(0.1)
    yield server
    kill_group(proc)


@pytest.fixture
def phones(stack, gateway, ivr, records):
    """Mark's phone behind a signing relay; every call ends with the test."""
    print(f"IVR log: {ivr.log}")
    gateway.answer, gateway.reason = 200, ""
    gateway.incoming.clear()
    mark = stack.phone("mark")
    relay = SigningRelay(ivr.port, lambda call_id: internal.sign(
        SECRET.encode(), call_id, internal.Internal(account=MARK, dest=DEST, session=call_id,
                                                    app="1")))
    yield mark, relay
    stack.hangup_all()
    relay.stop()
    stack.remove(mark)


def dial_ivr(stack, mark, relay):
    call = mark.call(f"sip:{DEST}@127.0.0.1:{relay.port}")
    stack.wait_for(lambda: call.confirmed or call.disconnected, 10, "IVR answer")
    assert call.confirmed, f"IVR refused with {call.codes}"
    return call


def test_rachel_enters_4545_on_marks_phone_and_the_toll_leg_carries_her_auth_id(
        stack, phones, gateway, ivr, tmp_path):
    mark, relay = phones
    call = dial_ivr(stack, mark, relay)
    call.send_dtmf("4545")
    leg = gateway.wait_incoming(15)
    assert leg.header(internal.AUTH_ID) == "1778555#4545"
    assert leg.header(internal.ACCOUNT) == MARK
    assert leg.header(internal.DEST) == DEST
    assert leg.header(internal.SESSION) == call.call_id
    headers = {name: leg.header(name) for name in internal.SIGNED + (internal.SIGNATURE,)}
    assert internal.verify(SECRET.encode(), call.call_id, headers) is not None
    assert leg.request.split(" ")[1].startswith(f"sip:{DEST}@127.0.0.1")
    assert f"sip:{MARK}@127.0.0.1" in leg.header("from")
    stack.wait_for(lambda: leg.confirmed, 10, "toll leg confirmed")

    def scrape() -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{ivr.metrics_port}/metrics").read().decode()
    # the IVR counts the toll leg when it sees the answer: wait for it, it runs apart from us
    stack.wait_for(lambda: 'ivr_toll_legs_total{code="200"}' in scrape(), 10, "toll leg metric")
    metrics = scrape()
    assert 'ivr_code_attempts_total{result="valid"}' in metrics
    assert "ivr_sessions_total" in metrics


def test_caller_hangup_while_the_toll_leg_rings_cancels_it(stack, phones, gateway, ivr):
    gateway.answer = None  # ring with 180 and never answer
    mark, relay = phones
    call = dial_ivr(stack, mark, relay)
    call.send_dtmf("4545")
    leg = gateway.wait_incoming(15)
    stack.wait_for(lambda: 180 in leg.codes, 10, "ringing")
    call.hangup_with()
    stack.wait_for(lambda: leg.disconnected, 10, "CANCEL on the toll leg")
    assert leg.last_code == 487


def test_audio_is_bridged_both_ways_and_gateway_hangup_reaches_the_caller(
        stack, phones, gateway, ivr, tmp_path):
    mark, relay = phones
    call = dial_ivr(stack, mark, relay)
    call.play(make_tone(tmp_path / "mark.wav", 600))
    call.send_dtmf("4545")
    leg = gateway.wait_incoming(15)
    stack.wait_for(lambda: leg.confirmed, 10, "toll leg confirmed")
    leg.play(make_tone(tmp_path / "gw.wav", 1000))
    ivr.wait_log(stack, f"[{call.call_id}] BRIDGE: audio flows")
    stack.sleep(0.5)  # the please-wait prompt stops at the bridge; let it drain
    call.record(tmp_path / "heard_by_mark.wav")
    leg.record(tmp_path / "heard_by_gw.wav")
    stack.sleep(1.5)
    call.stop_recording()
    leg.stop_recording()
    assert tone_fraction(tmp_path / "heard_by_mark.wav", 1000) > 0.5
    assert tone_fraction(tmp_path / "heard_by_gw.wav", 600) > 0.5
    leg.hangup_with()
    stack.wait_for(lambda: call.disconnected, 10, "BYE to Mark")


def test_caller_hangup_ends_the_toll_leg(stack, phones, gateway, ivr):
    mark, relay = phones
    call = dial_ivr(stack, mark, relay)
    call.send_dtmf("4545")
    leg = gateway.wait_incoming(15)
    stack.wait_for(lambda: leg.confirmed, 10, "toll leg confirmed")
    call.hangup_with()
    stack.wait_for(lambda: leg.disconnected, 10, "BYE on the toll leg")


def test_three_wrong_codes_hang_up_without_a_toll_leg(stack, phones, gateway, ivr, records):
    mark, relay = phones
    call = dial_ivr(stack, mark, relay)
    for n, code in enumerate(("1212", "3434", "5656"), 1):
        # each code once the IVR asks for it, judged before the next
        asked = f"[{call.call_id}] PROMPT: playing enter_code"
        stack.wait_for(lambda: ivr.text().count(asked) >= n, 15, f"the IVR asking for code #{n}")
        call.send_dtmf(code)
        judged = f"[{call.call_id}] CODE: invalid code, {n} recent failures"
        stack.wait_for(lambda: judged in ivr.text(), 15, f"wrong code #{n} judged")
    stack.wait_for(lambda: call.disconnected, 20, "hangup after 3 wrong codes")
    assert gateway.incoming == []
    assert int(records.get(f"tg:pinfail:{MARK}")) == 3
    assert 0 < records.ttl(f"tg:pinfail:{MARK}") <= 300


def test_sip_info_digits_are_collected(stack, phones, gateway, ivr):
    mark, relay = phones
    call = dial_ivr(stack, mark, relay)
    call.send_dtmf("4545", method=INFO)
    leg = gateway.wait_incoming(15)
    assert leg.header(internal.AUTH_ID) == "1778555#4545"


def test_another_customers_code_is_invalid(stack, phones, gateway, ivr, records):
    mark, relay = phones
    call = dial_ivr(stack, mark, relay)
    call.send_dtmf("6666")
    ivr.wait_log(stack, f"[{call.call_id}] CODE: invalid code")
    call.send_dtmf("8989")
    leg = gateway.wait_incoming(15)
    assert leg.header(internal.AUTH_ID) == "1778555#8989"
    assert int(records.get(f"tg:pinfail:{MARK}")) == 1


def test_confirm_by_pound_ends_a_variable_length_code(stack, phones, gateway, ivr, records):
    set_app(records, confirm_by_pound=True, min_auth_code_length=4, max_auth_code_length=6)
    mark, relay = phones
    call = dial_ivr(stack, mark, relay)
    call.send_dtmf("4545#")
    leg = gateway.wait_incoming(15)
    assert leg.header(internal.AUTH_ID) == "1778555#4545"


def test_unsigned_invite_is_forbidden(stack, phones, gateway, ivr):
    mark, _ = phones
    call = mark.call(f"sip:{DEST}@127.0.0.1:{ivr.port}")
    stack.wait_for(lambda: call.disconnected, 10, "refusal")
    assert call.last_code == 403


def test_invite_signed_with_another_secret_is_forbidden(stack, phones, gateway, ivr):
    mark, _ = phones
    relay = SigningRelay(ivr.port, lambda call_id: internal.sign(
        b"not-the-secret", call_id, internal.Internal(account=MARK, dest=DEST, session=call_id)))
    try:
        call = mark.call(f"sip:{DEST}@127.0.0.1:{relay.port}")
        stack.wait_for(lambda: call.disconnected, 10, "refusal")
        assert call.last_code == 403
    finally:
        relay.stop()


def test_toll_leg_refused_with_402_plays_insufficient_funds_then_hangs_up(
        stack, phones, gateway, ivr, tmp_path):
    gateway.answer, gateway.reason = 402, "Payment Required"
    mark, relay = phones
    call = dial_ivr(stack, mark, relay)
    call.send_dtmf("4545")
    gateway.wait_incoming(15)
    ivr.wait_log(stack, f"[{call.call_id}] REFUSED: toll leg answered 402")
    before = call.rx_packets()
    call.record(tmp_path / "refusal.wav")
    stack.wait_for(lambda: call.disconnected, 15, "hangup after the refusal prompt")
    assert call.rx_packets() > before + 50  # a second of prompt at least
    assert rms(tmp_path / "refusal.wav") > 100
    assert f"[{call.call_id}] PROMPT: playing insufficient_funds" in ivr.text()


def test_locked_out_account_is_not_prompted(stack, phones, gateway, ivr, records):
    records.set(f"tg:pinfail:{MARK}", 5)
    mark, relay = phones
    call = dial_ivr(stack, mark, relay)
    stack.wait_for(lambda: call.disconnected, 15, "hangup of a locked-out account")
    assert gateway.incoming == []
    assert f"[{call.call_id}] LOCKOUT: account {MARK} is locked out" in ivr.text()
