"""Voicemail of a second number (second-number-service.txt): a call in that nobody
answers leaves a message; the owner's phones learn of it (MWI); the owner calling their
own DID from the mobile its @pstn alias names lands in the mailbox, listens, deletes, and
calls out with the DID as the CLI, billed to the DID.

Real Kamailio, rtpengine, IVR, Redis, PostgreSQL and the xDR writer; the gateway is a
pjsua2 phone that places the PSTN calls and receives the forwarded and outgoing ones.
"""
from __future__ import annotations

import wave
from decimal import Decimal
from pathlib import Path

import pytest

from tests import tenants
from tests.calls import TOLL, from_the_pstn, heard, ivr_log, phone, talking
from tests.mailbox import Mailbox
from tests.phones import make_tone
from tests.stack import Stack

pytestmark = pytest.mark.e2e

UNANSWERED = "12125550111"    # a follow-me number that rings and rings
CALLER = "14165550123"


def mobile(did: str) -> str:
    """The owner's mobile (the DID's alias <mobile>@pstn): one per DID, so per test."""
    return "1416" + did[-8:]


def second_number(tg, office, person: str, mode: str = "forward_then_voicemail",
                  follow_me: str = f"{UNANSWERED}/5", **voicemail: str) -> str:
    """A DID as the seed sets it up: answering mode, follow-me, the mobile's @pstn alias
    (no authentication), voicemail options (--voicemail-max-messages 1 ...)."""
    did = office.people[person].id
    options = [arg for name, value in voicemail.items()
               for arg in (f"--voicemail-{name.replace('_', '-')}", value)]
    tg.cli("account", "update", did, "--answering-mode", mode, "--follow-me", follow_me,
           *options)
    tg.cli("alias", "create", f"{mobile(did)}@pstn", "--account", did, "--allow-auth", "false")
    return did


def ivr_logged(tg, sip, call, text: str, times: int = 1, timeout: float = 20) -> None:
    line = f"[{call.call_id}] {text}"
    sip.wait_for(lambda: ivr_log(tg).count(line) >= times, timeout, f"the IVR logging {text!r}")


def leave_message(tg, sip, call, tone: Path) -> None:
    """After the greeting and the beep, talk (a tone), then press # to end the message."""
    heard(tg, sip, call, "beep")
    ivr_logged(tg, sip, call, "RECORD: into")
    start = call.tx_packets()
    call.play(tone, loop=False)
    sip.wait_for(lambda: call.tx_packets() >= start + 100, 10, "two seconds of the caller's voice")
    call.send_dtmf("#")
    ivr_logged(tg, sip, call, "RECORD:", times=2)


def messages(records, did: str) -> list[tuple]:
    return records.query("SELECT caller, duration, heard, path FROM voicemail_messages "
                         "WHERE account_id = %s ORDER BY id", did)


def message_waiting(sip, desk, new: int, saved: int, timeout: float = 15) -> str:
    """The desk phone's NOTIFY saying `new`/`saved` messages."""
    summary = f"Voice-Message: {new}/{saved}"
    sip.wait_for(lambda: any(summary in m for m in desk.mwi), timeout,
                 f"a message-summary NOTIFY with {summary} (got {desk.mwi})")
    return next(m for m in desk.mwi if summary in m)


@pytest.fixture(scope="module")
def smtp():
    box = Mailbox().start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def tg(smtp):
    """The stack, its IVR e-mailing messages through the test's SMTP server."""
    stack = Stack(with_gateway=False, smtp_host="127.0.0.1", smtp_port=smtp.port).start()
    yield stack
    stack.stop()


@pytest.fixture
def tone(tmp_path) -> Path:
    return make_tone(tmp_path / "voice.wav", 440, 3.0)


def test_the_seeds_john_a_message_mwi_then_listen_delete_and_call_out_from_the_mailbox(
        tg, sip, gateway, records, calls_end, tone):
    office = tenants.office(tg, "jake")
    did = second_number(tg, office, "jake")
    tg.cli("account", "update", did, "--service-password", "7100")
    desk = phone(tg, sip, "jake-desk", office.jake)
    desk.answer = gateway.answer = None  # the mobile and the desk ring; nobody answers
    call = from_the_pstn(tg, gateway, did, CALLER)
    heard(tg, sip, call, "vm_not_available", timeout=30)
    assert len(gateway.incoming) == 1 and desk.incoming  # both were rung first
    sip.wait_for(lambda: desk.incoming[0].disconnected, 10, "the desk phone's CANCEL")
    leave_message(tg, sip, call, tone)
    heard(tg, sip, call, "vm_message_saved")
    call.hangup_with()
    sip.wait_for(lambda: len(messages(records, did)) == 1, 15, "the message stored")
    [(caller, seconds, was_heard, path)] = messages(records, did)
    assert (caller, was_heard) == (CALLER, False) and 2 <= seconds <= 4
    wav = tg.settings.var_path / "voicemail" / path
    with wave.open(str(wav)) as w:  # the prompts' format
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    summary = message_waiting(sip, desk, 1, 0)
    assert "Messages-Waiting: yes" in summary
    # the call in is billed as one (free at IN); the unanswered follow-me leg has its own
    rows = records.settled_xdrs(call.call_id, 2)
    assert [(leg, account, cld, amount) for leg, account, cld, _, amount in rows] == [
        ("in", did, did, 0), ("out", did, UNANSWERED, 0)]
    assert rows[0][3] > 0 and rows[1][3] == 0  # the voicemail leg talked, the mobile did not

    # John calls his own number from his mobile: his mailbox, never follow-me
    gateway.incoming.clear()
    gateway.answer = 200
    john = from_the_pstn(tg, gateway, did, mobile(did))
    heard(tg, sip, john, "vm_main_menu")
    ivr_logged(tg, sip, john, f"MAILBOX: {did}: 1 new, 0 saved")
    assert gateway.incoming == []
    john.send_dtmf("1")
    heard(tg, sip, john, "vm_message_menu")
    john.send_dtmf("3")  # delete
    heard(tg, sip, john, "vm_deleted")
    sip.wait_for(lambda: messages(records, did) == [], 10, "the message deleted")
    assert not wav.exists()
    message_waiting(sip, desk, 0, 0)
    heard(tg, sip, john, "vm_main_menu", times=2)
    john.send_dtmf("5")  # known by his caller ID alone: his password before calling out
    heard(tg, sip, john, "enter_password")
    john.send_dtmf("7100#")
    heard(tg, sip, john, "enter_destination")
    john.send_dtmf(f"{TOLL}#")
    out = gateway.wait_incoming(15)
    assert TOLL in out.request.split("\n", 1)[0]
    assert f"sip:{did}@" in out.header("From")  # the called party sees the DID
    sip.wait_for(lambda: out.confirmed, 10, "the outgoing call answered")
    talking(sip, john, out)
    out.hangup_with()  # the far end hangs up: John is back in the menu
    heard(tg, sip, john, "vm_main_menu", times=3)
    john.hangup_with()
    # John's call in (free at IN) and his call out, one session, both on the DID
    rows = records.settled_xdrs(john.call_id, 2)
    assert [(leg, account, cld, amount) for leg, account, cld, _, amount in rows] == [
        ("in", did, did, 0), ("toll", did, TOLL, Decimal("0.02"))]
    assert records.query("SELECT cli FROM xdrs WHERE call_id = %s", out.call_id) == [(did,)]


def test_a_message_ends_after_silence_and_keeps_only_a_moment_of_it(
        tg, sip, gateway, records, calls_end, tone):
    office = tenants.office(tg, "jake")
    did = second_number(tg, office, "jake", mode="voicemail")
    call = from_the_pstn(tg, gateway, did, CALLER)
    assert gateway.incoming == []
    heard(tg, sip, call, "beep")
    ivr_logged(tg, sip, call, "RECORD: into")
    call.play(make_tone(tone.parent / "short.wav", 440, 2.0), loop=False)
    ivr_logged(tg, sip, call, "RECORD:", times=2, timeout=30)
    assert f"[{call.call_id}] RECORD: " in ivr_log(tg)
    assert "(silence)" in ivr_log(tg).split(f"[{call.call_id}] RECORD: ")[-1].split("\n")[0]
    heard(tg, sip, call, "vm_message_saved")
    sip.wait_for(lambda: len(messages(records, did)) == 1, 15, "the message stored")
    [(_, seconds, _, _)] = messages(records, did)
    assert 2 <= seconds <= 3  # the tone, not the five seconds of silence after it


def test_a_caller_who_hangs_up_during_the_greeting_leaves_nothing(
        tg, sip, gateway, records, calls_end):
    office = tenants.office(tg, "jake")
    did = second_number(tg, office, "jake", mode="voicemail")
    call = from_the_pstn(tg, gateway, did, CALLER)
    heard(tg, sip, call, "vm_not_available")
    call.hangup_with()
    rows = records.settled_xdrs(call.call_id, 1)
    assert [(leg, account) for leg, account, _, _, _ in rows] == [("in", did)]
    assert messages(records, did) == []
    assert f"[{call.call_id}] RECORD:" not in ivr_log(tg)


def test_a_full_mailbox_says_so_and_takes_nothing(tg, sip, gateway, records, calls_end, tone):
    office = tenants.office(tg, "jake")
    did = second_number(tg, office, "jake", mode="voicemail", max_messages="1")
    first = from_the_pstn(tg, gateway, did, CALLER)
    leave_message(tg, sip, first, tone)
    first.hangup_with()
    sip.wait_for(lambda: len(messages(records, did)) == 1, 15, "the first message stored")
    second = from_the_pstn(tg, gateway, did, CALLER)
    heard(tg, sip, second, "vm_mailbox_full")
    sip.wait_for(lambda: second.disconnected, 20, "the goodbye")
    assert len(messages(records, did)) == 1


def test_the_owners_phone_reaches_its_mailbox_with_star_98(tg, sip, gateway, calls_end):
    office = tenants.office(tg, "jake")
    did = second_number(tg, office, "jake", mode="voicemail")
    desk = phone(tg, sip, "jake-desk", office.jake)
    call = desk.call(f"sip:*98@{tg.sip_target}")
    heard(tg, sip, call, "vm_main_menu")
    ivr_logged(tg, sip, call, f"MAILBOX: {did}: 0 new, 0 saved")
    assert f"[{call.call_id}] PROMPT: playing enter_password" not in ivr_log(tg)


def test_a_mobile_that_is_not_the_dids_own_gets_follow_me_not_the_mailbox(
        tg, sip, gateway, calls_end):
    office = tenants.office(tg, "jake")
    did = second_number(tg, office, "jake", follow_me=f"{TOLL}/30")
    call = from_the_pstn(tg, gateway, did, "14165550999")
    leg = gateway.wait_incoming(15)
    assert TOLL in leg.request.split("\n", 1)[0]
    sip.wait_for(lambda: call.confirmed, 10, "the caller connected to the follow-me number")
    assert f"[{call.call_id}] MAILBOX" not in ivr_log(tg)


def test_a_message_is_e_mailed_with_its_recording(tg, sip, gateway, smtp, calls_end, tone):
    office = tenants.office(tg, "jake")
    address = f"john-{office.jake.id}@example.com"
    did = second_number(tg, office, "jake", mode="voicemail", email=address)
    call = from_the_pstn(tg, gateway, did, CALLER)
    leave_message(tg, sip, call, tone)
    sip.wait_for(lambda: smtp.to(address), 20, f"the e-mail to {address}")
    [mail] = smtp.to(address)
    assert CALLER in mail["Subject"]
    [wav] = [part for part in mail.iter_attachments()]
    assert wav.get_content_type() == "audio/wav"
    assert wav.get_content()[:4] == b"RIFF"


def test_anyone_reaches_a_mailbox_at_the_voicemail_access_number_with_its_password(
        tg, sip, gateway, calls_end):
    office = tenants.office(tg, "jake")
    did = second_number(tg, office, "jake", mode="voicemail")
    tg.cli("account", "update", did, "--service-password", "4242")
    number = "1888" + did[-7:]
    tg.cli("app", "create", f"Voicemail {did}", "--type", "voicemail",
           "--access-number", number)
    call = from_the_pstn(tg, gateway, number, "14165550999")
    heard(tg, sip, call, "vm_enter_mailbox")
    call.send_dtmf(f"{did}#")
    heard(tg, sip, call, "enter_password")
    call.send_dtmf("1111#")  # wrong: asked again
    heard(tg, sip, call, "invalid_password")
    call.send_dtmf("4242#")
    heard(tg, sip, call, "vm_main_menu")
    ivr_logged(tg, sip, call, f"MAILBOX: {did} logged in")


def test_a_message_left_while_postgresql_is_down_is_filed_when_it_is_back(
        tg, sip, gateway, records, calls_end, tone):
    office = tenants.office(tg, "jake")
    did = second_number(tg, office, "jake", mode="voicemail")
    desk = phone(tg, sip, "jake-desk", office.jake)
    tg.pg.stop()
    try:
        call = from_the_pstn(tg, gateway, did, CALLER)
        leave_message(tg, sip, call, tone)
        heard(tg, sip, call, "vm_message_saved")
        call.hangup_with()
        sip.wait_for(lambda: f"[{call.call_id}] VOICEMAIL: PostgreSQL unavailable" in
                     ivr_log(tg), 15, "the message spooled")
    finally:
        tg.pg.start()
    sip.wait_for(lambda: len(messages(records, did)) == 1, 30, "the spooled message filed")
    [(caller, seconds, _, _)] = messages(records, did)
    assert caller == CALLER and seconds >= 2
    message_waiting(sip, desk, 1, 0)


def test_a_caller_known_by_the_mobiles_caller_id_alone_cannot_call_out_without_the_password(
        tg, sip, gateway, calls_end):
    # the PSTN does not vouch for a caller ID: a spoofed one must not be a free line out
    office = tenants.office(tg, "jake")
    did = second_number(tg, office, "jake", mode="voicemail")
    call = from_the_pstn(tg, gateway, did, mobile(did))
    heard(tg, sip, call, "vm_main_menu")
    call.send_dtmf("5")  # the account has no service password: no outgoing call at all
    heard(tg, sip, call, "no_permission")
    heard(tg, sip, call, "vm_main_menu", times=2)
    tg.cli("account", "update", did, "--service-password", "4242")
    call.send_dtmf("5")
    heard(tg, sip, call, "enter_password")
    call.send_dtmf("1111#")
    heard(tg, sip, call, "invalid_password")
    call.hangup_with()
    assert gateway.incoming == []
