"""tollgate-ivr: the IVR media server (pjsua2, single-threaded, one event loop).

pjsua2 callbacks only queue events; the loop feeds them to each session's PassThrough
and carries out the actions it returns (play, timer, originate, bridge, hang up).
"""
from __future__ import annotations

import argparse
import collections
import gc
import logging
import os
import resource
import signal
import sys
import time
import wave
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pjsua2 as pj
import redis

from billing import internal
from billing.xdr import XdrError, XdrEvent
from ivr import inbound, metrics, prompts
from ivr.actions import (
    Bridge,
    Hangup,
    Originate,
    Play,
    Reauthorize,
    Record,
    Rerate,
    SessionXdr,
    SetTimer,
    StopPlay,
    StopRecord,
)
from ivr.apps import callback, prepaid, selfcare, voicemail
from ivr.apps.notice import Notice
from ivr.mailboxes import Mailboxes
from ivr.passthrough import Caller, PassThrough
from ivr.services import Services
from tollgate import config, redis_conn
from tollgate.directory import Directory
from tollgate.directory import Record as Account
from tollgate.xdr_emit import XdrEmitter

log = logging.getLogger("ivr")
CODEC_PRIORITY = {"PCMU/8000/1": 255, "PCMA/8000/1": 254, "G722/16000/1": 253}
DTMF_RELAY = "application/dtmf-relay"
# call slots of the pjsua2 build: third_party/pjsua2/config_site.h (PyPI's wheel: 4)
PJSUA_MAX_CALLS = 1024
# slots beyond 2 per session, so callers over the limit still get our 503 (and Kamailio
# tries the next worker) instead of pjsua's own refusal
SPARE_CALLS = 8


App = PassThrough | prepaid.Prepaid | Notice | voicemail.Deposit | voicemail.Mailbox
# access-number applications on the prepaid card's login, by voice application type
SELF_SERVICE: dict[str, type[prepaid.Prepaid]] = {
    "prepaid": prepaid.Prepaid, "balance_info": selfcare.BalanceInfo,
    "voucher_topup": selfcare.VoucherTopup, "balance_transfer": selfcare.BalanceTransfer}
# a caller's audio at or below this level is silence: pjsua's level is the mean absolute
# sample / 256 (measured: a half-scale sine reads 39), so 1 is below ~ -36 dBFS
SILENCE_LEVEL = 1
# a message that ended in silence keeps this much of it after the last sound
SILENCE_KEPT_S = 0.5
# pjmedia closes a recording's file this soon after its recorder goes (one clock tick)
SEAL_WAIT_S = 2.0
# a spool of xDR events (Redis was down when a session ended) is retried this often
REPLAY_EVERY_S = 5.0
# the IVR ends an outgoing call this long before Kamailio's hard cap would
CAP_TIMER = "cap"
CAP_MARGIN_S = 1.0
REAUTH_HEADER = "X-TG-Reauth"   # kemi.reauth answers an in-dialog INFO carrying it
RERATE_HEADER = "X-TG-Rerate"   # ... and this one: a call-back's leg A rated anew


class Player(pj.AudioMediaPlayer):
    """A prompt file; its end is reported to the loop, never handled in the callback."""

    def __init__(self, events: collections.deque, session: "Session", token: int):
        super().__init__()
        self.events, self.session, self.token = events, session, token

    def onEof2(self) -> None:
        self.events.append((self.session, "eof", self.token))


@dataclass
class Recording:
    """The caller's audio going into a WAV file (a voicemail message, a greeting)."""
    recorder: pj.AudioMediaRecorder
    action: Record
    started: float
    last_voice: float


@dataclass
class Sealing:
    """A recording whose recorder is gone: pjmedia flushes and closes the file a clock
    tick later (its conference removes ports asynchronously since PJSIP 2.14)."""
    path: str
    why: str
    keep_s: float | None
    deadline: float


def wav_sealed(path: str) -> bool:
    """True once pjmedia wrote the RIFF sizes (it does when it closes the file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return True  # nothing to wait for
    return len(head) < 8 or head[4:8] != bytes(4)


def trim_wav(path: str, keep_s: float | None) -> int:
    """Rewrite a recording as a plain 8 kHz 16-bit WAV of its first `keep_s` seconds (None:
    all of it); its length in whole seconds (0 when the file is missing or empty). The
    data chunk is read to the end of the file: sizes pjmedia never wrote are not trusted."""
    try:
        raw = Path(path).read_bytes()
    except OSError:
        return 0
    rate = int.from_bytes(raw[24:28], "little") if raw[:4] == b"RIFF" else 0
    pos = 12
    while pos + 8 <= len(raw) and raw[pos:pos + 4] != b"data":
        pos += 8 + int.from_bytes(raw[pos + 4:pos + 8], "little")
    data = raw[pos + 8:]
    if not rate or pos + 8 > len(raw):
        return 0
    frames = len(data) // 2
    kept = frames if keep_s is None else min(frames, int(keep_s * rate))
    tmp = f"{path}.trim"
    with wave.open(tmp, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(data[:kept * 2])
    os.replace(tmp, path)
    return int(kept / rate + 0.5)


class Leg(pj.Call):
    """One call of a session (the caller's or the toll leg): callbacks become events."""

    def __init__(self, account: pj.Account, events: collections.deque, role: str,
                 call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(account, call_id)
        self.events, self.role = events, role
        self.session: Session | None = None
        self.ended = False
        self.max_duration: int | None = None

    def _emit(self, kind: str, arg: object = None) -> None:
        if self.session is not None:
            self.events.append((self.session, f"{self.role}_{kind}", arg))

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        self._read_reply(prm)  # a toll leg's, or a call-back's leg A (the IVR placed both)
        if info.state == pj.PJSIP_INV_STATE_EARLY:
            self._emit("ringing")
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self._emit("confirmed")
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.ended = True
            self._emit("disconnected", info.lastStatusCode)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        self._emit("media")

    def onCallTsxState(self, prm: pj.OnCallTsxStateParam) -> None:
        """Kamailio's final answer to an INFO the IVR sent in this leg (a reauthorization
        on the toll leg, a re-rating on a call-back's leg A)."""
        try:
            if prm.e.body.tsxState.type != pj.PJSIP_EVENT_RX_MSG:
                return
            message = prm.e.body.tsxState.src.rdata.wholeMsg
        except (AttributeError, pj.Error):
            return
        answer = inbound.info_answer(message)
        if answer is None:
            return
        code, reason, cap = answer
        if code >= 300:
            self._emit("info_refused", f"{code} {reason}")
        elif code >= 200:
            self._emit("info_accepted", cap)

    def _read_reply(self, prm: pj.OnCallStateParam) -> None:
        """The time Kamailio authorized the call for, from its 2xx (X-TG-Max-Duration)."""
        try:
            if prm.e.type != pj.PJSIP_EVENT_TSX_STATE or \
                    prm.e.body.tsxState.type != pj.PJSIP_EVENT_RX_MSG:
                return
            message = prm.e.body.tsxState.src.rdata.wholeMsg
        except (AttributeError, pj.Error):
            return
        if message.startswith("SIP/2.0 2"):
            value = inbound.parse_headers(message).get(internal.MAX_DURATION.lower(), "")
            self.max_duration = int(value) if value.isdigit() else None

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        self._emit("digit", prm.digit)

    def audio(self) -> pj.AudioMedia | None:
        """The active audio of this call, if any."""
        try:
            info = self.getInfo()
            for mi in info.media:
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    return self.getAudioMedia(mi.index)
        except pj.Error:
            pass
        return None


def release(leg: "Leg") -> None:
    """Let an ended leg be freed without harming the call that may now hold its slot.

    pjsua2's Call destructor hangs up whatever call has its slot id; when a new call took
    the slot already, the old object is left to leak rather than hang that call up.
    """
    leg.session = None
    if pj.Call.lookup(leg.getId()) not in (None, leg):
        leg.thisown = False


class Session:
    """The pjsua2 side of one application session: the caller leg, the outgoing (toll)
    leg, a prompt player, named timers. The application (PassThrough, Prepaid) decides."""

    def __init__(self, server: "Server", caller_leg: Leg, app: "App",
                 signed: internal.Internal, language: str, brand: str):
        self.server, self.caller_leg, self.signed = server, caller_leg, signed
        self.app = app
        self.toll: Leg | None = None
        self.player: Player | None = None
        self.playlist: list[Path] = []
        self.looping: list[Path] = []
        self.token = 0
        self.timers: dict[str, float] = {}
        self.started = self.bridged = self.failed = False
        self.placed = False   # the IVR placed the caller leg itself (a call-back's leg A)
        self.outgoing: Originate | None = None
        self.toll_answered = 0.0
        self.recording: Recording | None = None
        self.sealing: Sealing | None = None
        self.default_language, self.brand = language, brand
        self.setup_ts = time.time()
        caller_leg.session = self

    @property
    def call_id(self) -> str:
        own = getattr(self.app, "call_id", None)  # Notice, the voicemail apps
        if isinstance(own, str):
            return own
        caller = getattr(self.app, "caller", None)  # PassThrough, Prepaid
        return str(getattr(caller, "call_id", ""))

    @property
    def language(self) -> str:
        """The application's language now (a prepaid caller may choose one)."""
        return str(getattr(self.app, "language", "") or self.default_language)

    @property
    def kind(self) -> str:
        if isinstance(self.app, Notice):
            return "notification"
        if isinstance(self.app, voicemail.Deposit):
            return "voicemail"
        if isinstance(self.app, voicemail.Mailbox):
            return "mailbox"
        if isinstance(self.app, prepaid.Prepaid):
            return self.app.app_type
        return "pass_through" if isinstance(self.app, PassThrough) else "prepaid"

    def finished(self) -> bool:
        return self.caller_leg.ended and (self.toll is None or self.toll.ended) \
            and self.sealing is None  # a message being closed is still to be kept

    def close(self) -> None:
        """Give back what the application holds (a client's call slot), then break the
        reference cycles so the pjsua2 objects go now, not at some GC."""
        releasing = getattr(self.app, "release_slot", None)
        if releasing is not None:
            try:
                releasing()
            except redis.RedisError as exc:  # the slot expires on its own
                log.error("[%s] POLICY: call slot not given back: %s", self.call_id, exc)
        self._stop_player()
        if self.recording is not None:  # the app learns nothing more: the file is closed
            self._close_recorder()
        for leg in (self.caller_leg, self.toll):
            if leg is not None:
                release(leg)
        self.toll = None

    # events from the loop
    def handle(self, kind: str, arg: object) -> None:
        if self.failed:
            if kind == "eof" and arg == self.token:
                self._hangup(self.caller_leg)
            return
        handler = getattr(self, "on_" + kind, None)
        if handler is None:
            return
        try:
            handler(arg)
        except Exception as exc:  # Redis down mid-session, a bad record, a bug
            self.fail(kind, exc)

    def fail(self, step: str, exc: Exception) -> None:
        """A fault while handling `step`: never a stuck session or a free call. The
        outgoing leg is hung up (billed as far as it went), the caller hears that the
        service is unavailable and is let go; the loop goes on for every other session."""
        log.error("[%s] FAULT: %s on %s: %s", self.call_id, type(exc).__name__, step,
                  str(exc).replace("\n", " "))
        metrics.FAULTS.labels(type(exc).__name__).inc()
        self.failed = True
        self.timers.clear()
        self._hangup(self.toll)
        closing = getattr(self.app, "on_fault", None)
        if closing is not None:
            try:  # the session's own xDR: spooled if Redis is what failed
                self.apply([a for a in closing() if isinstance(a, SessionXdr)])
            except Exception as again:
                log.error("[%s] FAULT: no session xDR: %s", self.call_id, again)
        self.playlist, self.looping = [], []
        self._stop_player()
        try:
            self.playlist = [self.server.prompt_path("unavailable", self.language, self.brand)]
            self._play_next()
        except (FileNotFoundError, pj.Error):
            self._hangup(self.caller_leg)

    def on_caller_confirmed(self, _: object) -> None:
        if self.placed:  # leg A answered: the application starts now, not in early media
            answered = getattr(self.app, "leg_a_answered", None)
            if answered is not None:
                answered(self.caller_leg.max_duration)
            self.on_caller_media(None)

    def _caller_answered(self) -> bool:
        try:
            return bool(self.caller_leg.getInfo().state == pj.PJSIP_INV_STATE_CONFIRMED)
        except pj.Error:
            return False

    def on_caller_media(self, _: object) -> None:
        if self.placed and not self._caller_answered():
            return
        if not self.started and self.caller_leg.audio() is not None:
            self.started = True
            self.apply(self.app.start())
        self._try_bridge()

    def on_caller_digit(self, digit: object) -> None:
        log.debug("[%s] DTMF: a digit", self.call_id)  # never the digit: PINs stay out of logs
        self.apply(self.app.on_digit(str(digit)))

    def on_caller_disconnected(self, _: object) -> None:
        if self.recording is not None:
            self._finish_recording("hangup")
        self.apply(self.app.on_caller_hangup())

    def on_toll_ringing(self, _: object) -> None:
        ringing = getattr(self.app, "on_toll_ringing", None)
        if ringing is not None:
            self.apply(ringing())

    def on_toll_confirmed(self, _: object) -> None:
        cap = self.toll.max_duration if self.toll else None
        if cap:
            # end the outgoing call ourselves just before Kamailio's hard cap: its dialog
            # timer sends two BYEs, and Kamailio 5.6.3 loses the second when the first is
            # answered at once ("terminating non-confirmed dialogs not supported"); the
            # cap stays the backstop
            self.timers[CAP_TIMER] = time.monotonic() + max(0.5, cap - CAP_MARGIN_S)
        self.toll_answered = time.monotonic()
        if isinstance(self.app, PassThrough):
            self.apply(self.app.on_toll_answered())
        else:
            self.apply(self.app.on_toll_answered(self.toll.max_duration if self.toll else None))

    def on_toll_reauthorized(self, cap: object) -> None:
        """Kamailio moved the hard cap: so does the IVR's own, a second before it."""
        if self.toll is None or self.toll.ended or CAP_TIMER not in self.timers:
            return
        seconds = int(cap)  # type: ignore[call-overload]
        self.timers[CAP_TIMER] = self.toll_answered + max(0.5, seconds - CAP_MARGIN_S)
        reauthorized = getattr(self.app, "on_toll_reauthorized", None)
        if reauthorized is not None:
            self.apply(reauthorized(seconds))

    def on_toll_info_accepted(self, cap: object) -> None:
        """A reauthorization granted: Kamailio's answer carries the call's new maximum."""
        if isinstance(cap, int):
            self.on_toll_reauthorized(cap)

    def on_toll_info_refused(self, answer: object) -> None:
        log.warning("[%s] REAUTH: refused by Kamailio: %s; the cap stays", self.call_id,
                    answer)

    def on_caller_info_accepted(self, _: object) -> None:
        if self.placed:
            log.info("[%s] RERATE: accepted by Kamailio", self.call_id)

    def on_caller_info_refused(self, answer: object) -> None:
        if self.placed:
            log.warning("[%s] RERATE: refused by Kamailio: %s; leg A keeps its rate",
                        self.call_id, answer)

    def on_toll_media(self, _: object) -> None:
        self._try_bridge()

    def on_toll_disconnected(self, code: object) -> None:
        self.timers.pop(CAP_TIMER, None)
        if self.bridged:
            self._unbridge()
        self.apply(self.app.on_toll_ended(int(code)))  # type: ignore[call-overload]

    def on_eof(self, token: object) -> None:
        if token != self.token:
            return
        self._stop_player()
        if not self.playlist and self.looping:
            self.playlist = list(self.looping)
        if self.playlist:
            self._play_next()
        else:
            self.apply(self.app.on_prompt_done())

    def tick(self, now: float) -> None:
        if self.recording is not None and not self.failed:
            self._watch_recording(now)
        if self.sealing is not None:
            self._watch_sealing(now)
        for name, deadline in list(self.timers.items()):
            if now >= deadline and self.timers.get(name) == deadline:
                del self.timers[name]
                self.handle("timer", name)

    def on_timer(self, name: object) -> None:
        if name == CAP_TIMER:
            log.info("[%s] CAP: ending the outgoing call at its authorized maximum",
                     self.call_id)
            self._hangup(self.toll)
            return
        if isinstance(self.app, PassThrough):
            self.apply(self.app.on_timeout())
        else:
            self.apply(self.app.on_timer(str(name)))

    # actions of the application
    def apply(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, Play):
                self._stop_player()
                self.playlist = self._files(action)
                self.looping = list(self.playlist) if action.loop else []
                if self.playlist:
                    self._play_next()
                else:
                    self.server.events.append((self, "eof", self.token))
            elif isinstance(action, StopPlay):
                self.playlist, self.looping = [], []
                self._stop_player()
            elif isinstance(action, SetTimer):
                if action.seconds is None:
                    self.timers.pop(action.name, None)
                else:
                    self.timers[action.name] = time.monotonic() + action.seconds
            elif isinstance(action, Originate):
                self._originate(action)
            elif isinstance(action, Bridge):
                self._try_bridge()
            elif isinstance(action, Hangup):
                self._hangup(self.caller_leg if action.leg == "caller" else self.toll,
                             action.code, action.reason)
            elif isinstance(action, SessionXdr):
                self._session_xdr(action)
            elif isinstance(action, Reauthorize):
                self._reauthorize()
            elif isinstance(action, Rerate):
                self._rerate(action)
            elif isinstance(action, Record):
                self._record(action)
            elif isinstance(action, StopRecord):
                if self.recording is not None:
                    self._finish_recording("stopped")

    # recording the caller
    def _record(self, action: Record) -> None:
        if self.recording is not None:
            self._close_recorder()
        audio = self.caller_leg.audio()
        recorder = pj.AudioMediaRecorder()
        try:
            if audio is None:
                raise ValueError("the caller has no audio")
            recorder.createRecorder(action.path)
            audio.startTransmit(recorder)
        except (pj.Error, ValueError) as exc:
            log.error("[%s] RECORD: cannot record %s: %s", self.call_id, action.path,
                      exc.info() if isinstance(exc, pj.Error) else exc)
            self.apply(self._recorded(0, "failed"))
            return
        now = time.monotonic()
        self.recording = Recording(recorder, action, now, now)
        log.info("[%s] RECORD: into %s, at most %d s", self.call_id, action.path,
                 action.max_seconds)

    def _watch_recording(self, now: float) -> None:
        """Voice keeps a message going; its longest length or enough silence ends it."""
        r = self.recording
        assert r is not None
        audio = self.caller_leg.audio()
        try:
            # what the caller's port sends into the bridge is its "tx" level in pjsua2
            if audio is not None and audio.getTxLevel() > SILENCE_LEVEL:
                r.last_voice = now
        except pj.Error:
            pass
        if now - r.started >= r.action.max_seconds:
            self._finish_recording("max_length")
        elif now - r.last_voice >= r.action.silence_seconds:
            self._finish_recording("silence")

    def _close_recorder(self) -> Recording:
        """Disconnect and destroy the recorder now: the WAV file is complete after this."""
        r, self.recording = self.recording, None
        assert r is not None
        audio = self.caller_leg.audio()
        if audio is not None:
            try:
                audio.stopTransmit(r.recorder)
            except pj.Error:
                pass
        r.recorder = None  # type: ignore[assignment]  # the last reference: file closed
        return r

    def _finish_recording(self, why: str) -> None:
        r = self._close_recorder()
        keep = (r.last_voice - r.started) + SILENCE_KEPT_S if why == "silence" else None
        self.sealing = Sealing(r.action.path, why, keep, time.monotonic() + SEAL_WAIT_S)

    def _watch_sealing(self, now: float) -> None:
        """Once pjmedia closed the file (or gave up): its length to the application."""
        s = self.sealing
        assert s is not None
        if not wav_sealed(s.path) and now < s.deadline:
            return
        self.sealing = None
        seconds = trim_wav(s.path, s.keep_s)
        log.info("[%s] RECORD: %d s kept (%s)", self.call_id, seconds, s.why)
        if not self.failed:
            self.apply(self._recorded(seconds, s.why))

    def _recorded(self, seconds: int, why: str) -> list:
        recorded = getattr(self.app, "on_recorded", None)
        return recorded(seconds, why) if recorded is not None else []

    def _files(self, action: Play) -> list[Path]:
        """The prompt files of a Play: named prompts, or every file of a MOH class."""
        if action.folder:
            return self.server.music(action.folder)
        files = []
        for name in action.prompts:
            language = self.language
            if name.startswith("file:"):  # a file of the platform's own (a message)
                index = name.removeprefix("file:")
                if index.isdigit() and int(index) < len(action.files) \
                        and Path(action.files[int(index)]).is_file():
                    files.append(Path(action.files[int(index)]))
                else:
                    log.error("[%s] PROMPT: no file %s", self.call_id, name)
                continue
            if "/" in name:  # "es/for_language": a prompt of one language in a menu of many
                language, name = name.split("/", 1)
            try:
                files.append(self.server.prompt_path(name, language, self.brand))
            except FileNotFoundError as exc:
                log.error("[%s] PROMPT: cannot play %s: %s", self.call_id, name, exc)
        return files

    def _play_next(self) -> None:
        path = self.playlist.pop(0)
        target = self.caller_leg.audio()
        try:
            self.token += 1
            player = Player(self.server.events, self, self.token)
            player.createPlayer(str(path), pj.PJMEDIA_FILE_NO_LOOP)
        except pj.Error as exc:
            log.error("[%s] PROMPT: cannot play %s: %s", self.call_id, path, exc.info())
            self.server.events.append((self, "eof", self.token))
            return
        self.player = player
        if target is not None:
            player.startTransmit(target)
        log.info("[%s] PROMPT: playing %s (%s)", self.call_id, path.stem, path)

    def _stop_player(self) -> None:
        if self.player is not None:
            self.token += 1
            self.server.retire(self.player)
            self.player = None

    def _originate(self, action: Originate) -> None:
        self.outgoing = action
        settings = self.server.settings
        dest = action.dest or self.signed.dest
        data = internal.Internal(account=action.auth_id if action.dest else self.signed.account,
                                 dest=dest, session=self.signed.session or self.call_id,
                                 auth_id=action.auth_id, app=self.signed.app,
                                 ani=action.cli, access_code=action.access_code)
        headers = internal.sign(self.server.secret, data.session, data,
                                ttl=settings.internal_header_ttl)
        uri = inbound.toll_uri(dest, settings.sip_address, settings.sip_port)
        prm = pj.CallOpParam(True)
        prm.txOption.localUri = inbound.toll_from(action.cli or data.account,
                                                  settings.ivr_address)
        for name, value in headers.items():
            header = pj.SipHeader()
            header.hName, header.hValue = name, value
            prm.txOption.headers.append(header)
        if self.toll is not None:
            self.server.rejected.append(self.toll)  # reaped once it has ended
            self.toll.session = None
        self.toll = Leg(self.server.account, self.server.events, "toll")
        self.toll.session = self
        try:
            self.toll.makeCall(uri, prm)
        except pj.Error as exc:
            log.error("[%s] ORIGINATE: %s failed: %s", self.call_id, uri, exc.info())
            self.toll.ended = True
            self.server.events.append((self, "toll_disconnected", 503))
            return
        log.info("[%s] ORIGINATE: toll leg %s to %s as %s", self.call_id,
                 self.toll.getInfo().callIdString, uri, action.auth_id)

    def _reauthorize(self) -> None:
        """An INFO inside the outgoing call, signed over its Call-ID: may it last longer?"""
        if self.toll is None or self.toll.ended or self.outgoing is None:
            return
        action = self.outgoing
        data = internal.Internal(account=action.auth_id, dest=action.dest or self.signed.dest,
                                 session=self.signed.session or self.call_id,
                                 auth_id=action.auth_id, app=self.signed.app, ani=action.cli,
                                 access_code=action.access_code)
        if self._signed_info(self.toll, REAUTH_HEADER, data, "REAUTH"):
            log.info("[%s] REAUTH: asking Kamailio for more time", self.call_id)

    def _signed_info(self, leg: Leg, header_name: str, data: internal.Internal,
                     step: str) -> bool:
        """An INFO inside `leg` carrying `header_name` and `data`, signed over the leg's
        own Call-ID (Kamailio's kemi/reauth.py answers it); False when not sent."""
        try:
            call_id = leg.getInfo().callIdString
            headers = internal.sign(self.server.secret, call_id, data,
                                    ttl=self.server.settings.internal_header_ttl)
            prm = pj.CallSendRequestParam()
            prm.method = "INFO"
            for name, value in [(header_name, "1"), *headers.items()]:
                header = pj.SipHeader()
                header.hName, header.hValue = name, value
                prm.txOption.headers.append(header)
            leg.sendRequest(prm)
        except pj.Error as exc:
            log.warning("[%s] %s: not sent: %s", self.call_id, step, exc.info())
            return False
        return True

    def _rerate(self, action: Rerate) -> None:
        """A signed INFO inside leg A (a call-back the IVR placed): Kamailio rates it
        under `access_code` from now on (kemi/reauth.py)."""
        if not self.placed or self.caller_leg.ended:
            return
        data = internal.Internal(account=self.signed.account, dest=self.signed.ani,
                                 session=self.signed.session, auth_id=self.signed.account,
                                 app=self.signed.app, access_code=action.access_code)
        if self._signed_info(self.caller_leg, RERATE_HEADER, data, "RERATE"):
            log.info("[%s] RERATE: leg A under %s asked", self.call_id,
                     action.access_code or "plain")

    def _try_bridge(self) -> None:
        if self.bridged or self.toll is None or self.app.state != "bridged":
            return
        a, b = self.caller_leg.audio(), self.toll.audio()
        if a is None or b is None:
            return
        a.startTransmit(b)
        b.startTransmit(a)
        self.bridged = True
        log.info("[%s] BRIDGE: audio flows both ways", self.call_id)

    def _unbridge(self) -> None:
        self.bridged = False
        a = self.caller_leg.audio()
        b = self.toll.audio() if self.toll is not None else None
        for src, dst in ((a, b), (b, a)):
            if src is not None and dst is not None:
                try:
                    src.stopTransmit(dst)
                except pj.Error:
                    pass

    def _hangup(self, leg: Leg | None, code: int = 0, reason: str = "") -> None:
        if leg is None or leg.ended:
            return
        prm = pj.CallOpParam(True)
        if code:  # the final response of a call not answered (early media)
            prm.statusCode, prm.reason = code, reason
        try:
            leg.hangup(prm)
        except pj.Error as exc:
            log.warning("[%s] HANGUP: %s", self.call_id, exc.info())

    def _session_xdr(self, bill: SessionXdr) -> None:
        """The caller's leg billed by the application (prepaid incoming session)."""
        end = Decimal(f"{time.time():.3f}")
        setup = min(Decimal(f"{self.setup_ts:.3f}"), end)
        connect = max(setup, end - bill.seconds) if bill.seconds > 0 else Decimal(0)
        try:
            event = XdrEvent(call_id=self.call_id, session_id=self.signed.session or self.call_id,
                             leg="ivr", account=bill.account, customer_id=bill.customer_id,
                             cli=bill.cli[:256], cld=bill.cld[:256],
                             access_code=bill.access_code[:256], setup_ts=setup,
                             connect_ts=connect, end_ts=end, sip_code=200, reason=bill.reason,
                             node=f"ivr:{os.getpid()}")
        except XdrError as exc:
            log.error("[%s] XDR: cannot build the session's xDR: %s", self.call_id, exc)
            return
        sink = "redis" if self.server.emitter.emit(event.encode()) else "spool"
        metrics.SESSION_XDRS.labels(sink).inc()
        log.info("[%s] XDR: session of %s, %d s billed under %r (%s)", self.call_id,
                 bill.account, bill.seconds, bill.access_code, sink)


class IvrAccount(pj.Account):
    def __init__(self, server: "Server"):
        super().__init__()
        self.server = server

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        self.server.incoming(prm)


class Server:
    def __init__(self, settings: config.Settings, prompt_dir: Path, brand_dir: Path | None,
                 pj_log_level: int = 1, max_sessions: int = 2):
        self.settings, self.prompt_dir, self.brand_dir = settings, prompt_dir, brand_dir
        self.max_sessions = max_sessions
        self.secret = settings.secret()
        self.directory = Directory.from_settings(settings)
        self.services = Services(self.directory, settings)
        self.mailboxes = Mailboxes(settings, self.services, self.secret)
        self.emitter = XdrEmitter(self.directory.client, settings.var_path / "spool" / "ivr",
                                  replicas=redis_conn.replica_acks(settings),
                                  wait_ms=settings.redis_replica_wait_ms)
        self.next_replay = 0.0
        self.events: collections.deque = collections.deque()
        self.sessions: list[Session] = []
        self.rejected: list[Leg] = []
        self.retired: list[pj.AudioMediaPlayer] = []
        self.callbacks: list[callback.Request] = []   # call-backs waiting for their time
        self.pj_log_level = pj_log_level
        self.stopping = False
        self.ep = pj.Endpoint()
        self.account: IvrAccount

    # start and stop
    def start(self) -> None:
        raise_fd_limit(4 * self.max_calls() + 256)
        self.ep.libCreate()
        self.ep.libInit(self._ep_config())
        transport = pj.TransportConfig()
        transport.port = self.settings.ivr_sip_port
        transport.boundAddress = transport.publicAddress = self.settings.ivr_address
        tid = self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        self._set_codecs()
        self.account = IvrAccount(self)
        self.account.create(self._account_config(tid))
        self.mailboxes.start()
        log.info("[-] START: IVR on udp:%s:%d, Kamailio %s:%d", self.settings.ivr_address,
                 self.settings.ivr_sip_port, self.settings.sip_address, self.settings.sip_port)

    def max_calls(self) -> int:
        """Call slots: a caller leg and a toll leg per session, a few for refusals."""
        return min(PJSUA_MAX_CALLS, 2 * self.max_sessions + SPARE_CALLS)

    def _ep_config(self) -> pj.EpConfig:
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = self.max_calls()  # above the build's cap: silently lowered
        cfg.uaConfig.userAgent = "tollgate-ivr"
        # conference bridge slots: one per call, one per prompt player, the null device
        cfg.medConfig.maxMediaPorts = 2 * self.max_calls() + 1
        cfg.medConfig.sndAutoCloseTime = -1  # else the null device stops the media clock
        cfg.medConfig.clockRate = cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.noVad = True  # relay silence too: media timeouts downstream watch RTP
        cfg.medConfig.threadCnt = 1
        cfg.logConfig.level = cfg.logConfig.consoleLevel = self.pj_log_level
        return cfg

    def _account_config(self, tid: int) -> pj.AccountConfig:
        s = self.settings
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:ivr@{s.ivr_address}:{s.ivr_sip_port}"
        cfg.sipConfig.transportId = tid
        media = cfg.mediaConfig.transportConfig
        media.port = s.ivr_media_port
        media.portRange = 2000
        media.boundAddress = media.publicAddress = s.ivr_address
        return cfg

    def _set_codecs(self) -> None:
        for codec in self.ep.codecEnum2():
            if codec.codecId != "telephone-event/8000/1":
                self.ep.codecSetPriority(codec.codecId, CODEC_PRIORITY.get(codec.codecId, 0))

    def run(self) -> None:
        while not self.stopping:
            self.ep.libHandleEvents(10)
            try:
                self.directory.poll()  # provisioning changes reach the cached records
            except (redis.RedisError, OSError) as exc:
                log.warning("[-] CACHE: invalidations not read: %s", exc)
            self.dispatch()
            self._call_back()
            self._replay_spool()
        self.shutdown()

    def shutdown(self) -> None:
        log.info("[-] STOP: hanging up %d sessions", len(self.sessions))
        self.ep.hangupAllCalls()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and any(not s.finished() for s in self.sessions):
            self.ep.libHandleEvents(10)
        self.events.clear()
        while self.sessions:  # no loop variable may keep one alive past libDestroy
            self.sessions.pop().close()
        while self.rejected:
            release(self.rejected.pop())
        self.retired.clear()
        self.account.shutdown()
        self.mailboxes.stop()
        gc.collect()  # nothing of pjsua2 may be freed after libDestroy
        self.ep.libDestroy()

    # the loop's work
    def dispatch(self) -> None:
        while self.events:
            session, kind, arg = self.events.popleft()
            try:
                session.handle(kind, arg)
            except Exception:  # a bug in a session's fault handling: end that session only
                log.exception("FAULT: session %s could not handle %s", id(session), kind)
                session.failed = True
                session.timers.clear()
                for leg in (session.toll, session.caller_leg):
                    session._hangup(leg)
        now = time.monotonic()
        for session in self.sessions:
            session.tick(now)
        self._reap()

    def _reap(self) -> None:
        # pjsua2 objects are dropped only here, outside their callbacks, and right after
        # their call ended: pjsua reuses call slots round-robin
        for leg in [leg for leg in self.rejected if leg.ended]:
            self.rejected.remove(leg)
            release(leg)
        for session in [s for s in self.sessions if s.finished()]:
            self.sessions.remove(session)
            session.close()
            metrics.ACTIVE.set(len(self.sessions))
        self.retired.clear()

    def _replay_spool(self) -> None:
        now = time.monotonic()
        if now < self.next_replay:
            return
        self.next_replay = now + REPLAY_EVERY_S
        try:
            sent = self.emitter.replay()
        except (OSError, redis.RedisError):
            return
        if sent:
            log.info("[-] XDR: replayed %d spooled session xDRs", sent)

    def retire(self, player: pj.AudioMediaPlayer) -> None:
        self.retired.append(player)

    def prompt_path(self, name: str, language: str, brand: str) -> Path:
        return prompts.resolve(self.prompt_dir, name, language, self.brand_dir, brand)

    def music(self, folder: str) -> list[Path]:
        """The files of a music-on-hold class (<prompts>/moh/<class>/*.wav), else default."""
        return prompts.music(self.prompt_dir, folder.removeprefix("moh/"))

    # incoming INVITE
    def incoming(self, prm: pj.OnIncomingCallParam) -> None:
        leg = Leg(self.account, self.events, "caller", prm.callId)
        call_id = leg.getInfo().callIdString
        source = prm.rdata.srcAddress
        signed = inbound.verify_invite(self.secret, self.settings.sip_address, source, call_id,
                                       prm.rdata.wholeMsg)
        if signed is None:
            log.warning("[%s] TRUST: INVITE from %s without valid internal headers",
                        call_id, source)
            return self._reject(leg, 403, "Forbidden")
        requested = self._callback_request(call_id, signed)
        if requested:  # a callback access number is never answered: it calls back
            return self._reject(leg, 603, "Decline")
        if len(self.sessions) >= self.max_sessions:  # each session needs a toll-leg slot too
            log.warning("[%s] CAPACITY: %d sessions already", call_id, len(self.sessions))
            return self._reject(leg, 503, "Service Unavailable")
        try:
            session = self._session(leg, call_id, signed)
        except Exception as exc:  # Redis down or a bad record: fail closed
            log.error("[%s] LOOKUP: %s", call_id, exc)
            return self._reject(leg, 503, "Service Unavailable")
        if session is None:
            return self._reject(leg, 403, "Forbidden")
        self.sessions.append(session)
        metrics.SESSIONS.inc()
        metrics.APP_SESSIONS.labels(session.kind).inc()
        metrics.ACTIVE.set(len(self.sessions))
        log.info("[%s] ANSWER: account %s ANI %s to %s, session %s, app %s", call_id,
                 signed.account or "-", signed.ani or "-", signed.dest, signed.session,
                 signed.app or "-")
        answer = pj.CallOpParam(True)
        # a voice notification plays as early media: never answered, never billed
        answer.statusCode = 183 if getattr(session.app, "early_media", False) else 200
        leg.answer(answer)

    def _session(self, leg: Leg, call_id: str, signed: internal.Internal) -> Session | None:
        """The application the signed headers name, for this caller (None: refuse)."""
        if signed.notify:
            notice = internal.parse_notice(signed.notify)
            if notice is None:
                log.warning("[%s] LOOKUP: malformed notification %r", call_id, signed.notify)
                return None
            language = prompts.DEFAULT_LANGUAGE
            caller = self.directory.account(signed.account) if signed.account else None
            if caller is not None and caller.get("language"):
                language = str(caller["language"])
            return Session(self, leg, Notice(call_id, *notice), signed, language, "")
        account = self.directory.account(signed.account) if signed.account else None
        if signed.account and account is None:
            log.warning("[%s] LOOKUP: unknown account %s", call_id, signed.account)
            return None
        if signed.app in (voicemail.DEPOSIT_APP, voicemail.ACCESS_APP, voicemail.PHONE_APP):
            return self._voicemail(leg, call_id, signed, account)
        app_id = signed.app or str((account or {}).get("ivr_app_id") or "")
        app = self.directory.app(app_id) if app_id else None
        kind = app.get("type") if app else None
        session_id = signed.session or call_id
        brand = self.directory.brand_prompts(signed.dest, app)
        if app is not None and kind in SELF_SERVICE:
            card = SELF_SERVICE[str(kind)](prepaid.Caller(call_id=call_id, session=session_id,
                                                  access_number=signed.dest, ani=signed.ani,
                                                  app=app, account=account,
                                                  longest=self.settings.max_call_duration),
                                   self.services)
            return Session(self, leg, card, signed, card.language, brand)
        if app is not None and kind == "voicemail":  # a voicemail access number
            options = app.get("settings") or {}
            mailbox = voicemail.Mailbox(call_id, "", signed.ani, self.mailboxes,
                                        language=str((options.get("languages") or
                                                      [prompts.DEFAULT_LANGUAGE])[0]),
                                        allow_calls=bool(options.get("allow_outgoing_calls",
                                                                     True)))
            return Session(self, leg, mailbox, signed, mailbox.language, brand)
        if app is not None and kind == "pass_through" and account is not None:
            passthrough = PassThrough(Caller(call_id=call_id, account=account, app=app,
                                             dest=signed.dest, session=session_id),
                                      self.directory)
            language = str(account.get("language") or prompts.DEFAULT_LANGUAGE)
            return Session(self, leg, passthrough, signed, language, brand)
        log.warning("[%s] LOOKUP: no voice application this server runs: %r (%s)",
                    call_id, app_id, kind)
        return None

    def _voicemail(self, leg: Leg, call_id: str, signed: internal.Internal,
                   owner: Account | None) -> Session | None:
        """Leaving a message for the signed account, or its mailbox (Kamailio knows the
        owner: by the ANI's @pstn alias, or its own phone dialing *98)."""
        if owner is None:
            log.warning("[%s] LOOKUP: voicemail without a mailbox", call_id)
            return None
        language = str(owner.get("language") or prompts.DEFAULT_LANGUAGE)
        owner_id = str(owner["id"])
        app: App
        if signed.app == voicemail.DEPOSIT_APP:
            app = voicemail.Deposit(call_id, owner_id, signed.ani, self.mailboxes, language)
        else:
            phone = signed.app == voicemail.PHONE_APP  # digest-authenticated by Kamailio
            trusted = phone or not self.mailboxes.pin_required(owner_id)
            app = voicemail.Mailbox(call_id, owner_id, signed.ani, self.mailboxes,
                                    trusted=trusted, verified=phone, language=language)
        return Session(self, leg, app, signed, language, "")

    # callback calling
    def _callback_request(self, call_id: str, signed: internal.Internal) -> bool:
        """A call to a callback access number: plan the call-back (or refuse it); True
        when the number is a callback access number (the INVITE is then declined)."""
        try:
            app = self.directory.app(signed.app) if signed.app and not signed.notify else None
        except redis.RedisError:
            return False  # the session lookup answers 503 the usual way
        if app is None or app.get("type") != "callback":
            return False
        try:
            planned = callback.plan(app, call_id, signed.dest, signed.ani, self.services,
                                    time.monotonic())
        except redis.RedisError as exc:
            planned = f"backend unavailable: {exc}"
        if isinstance(planned, str):
            metrics.CALLBACKS.labels("refused").inc()
            log.warning("[%s] CALLBACK: not calling %s back: %s", call_id,
                        signed.ani or "anonymous", planned)
            return True
        self.callbacks.append(planned)
        metrics.CALLBACKS.labels("scheduled").inc()
        log.info("[%s] CALLBACK: calling %s back in %.0f s, leg A on %s", call_id,
                 planned.number, planned.due - time.monotonic(), planned.payer)
        return True

    def _call_back(self) -> None:
        now = time.monotonic()
        due = [r for r in self.callbacks if r.due <= now]
        for request in due:
            self.callbacks.remove(request)
            try:
                self._place_callback(request)
            except Exception as exc:  # a bad record or Redis down: this call-back only
                metrics.CALLBACKS.labels("failed").inc()
                log.error("[%s] CALLBACK: not placed: %s", request.call_id, exc)

    def _place_callback(self, request: callback.Request) -> None:
        """Leg A: the IVR calls the requester through Kamailio, signed as the payer's
        outgoing call (rated under the LEG_A code), showing the access number."""
        if len(self.sessions) >= self.max_sessions:
            metrics.CALLBACKS.labels("capacity").inc()
            log.warning("[%s] CALLBACK: %d sessions already: not placed", request.call_id,
                        len(self.sessions))
            return
        app = self.directory.access_number(request.access_number)
        if app is None or app.get("type") != "callback":
            raise ValueError(f"{request.access_number} is no callback access number now")
        known = self.directory.account(request.card) if request.card else None
        caller = prepaid.Caller(call_id=request.call_id, session=request.call_id,
                                access_number=request.access_number, ani=request.number,
                                app=app, longest=self.settings.max_call_duration)
        app_id = str(app["id"])
        signed = internal.Internal(account=request.payer, dest=request.access_number,
                                   session=request.call_id, app=app_id, ani=request.number)
        leg = Leg(self.account, self.events, "caller")
        card = callback.Callback(caller, self.services, known=known, requester=request.ani)
        session = Session(self, leg, card, signed, card.language,
                          self.directory.brand_prompts(request.access_number, app))
        session.placed = True
        cap = callback.leg_a_cap(request, self.services, self.settings.max_call_duration)
        data = internal.Internal(account=request.payer, dest=request.number,
                                 session=request.call_id, auth_id=request.payer, app=app_id,
                                 ani=request.access_number, access_code=request.leg_a_code,
                                 cap=str(cap) if cap else "")
        headers = internal.sign(self.secret, data.session, data,
                                ttl=self.settings.internal_header_ttl)
        prm = pj.CallOpParam(True)
        prm.txOption.localUri = inbound.toll_from(request.access_number,
                                                  self.settings.ivr_address)
        for name, value in headers.items():
            header = pj.SipHeader()
            header.hName, header.hValue = name, value
            prm.txOption.headers.append(header)
        uri = inbound.toll_uri(request.number, self.settings.sip_address,
                               self.settings.sip_port)
        self.sessions.append(session)
        metrics.ACTIVE.set(len(self.sessions))
        metrics.APP_SESSIONS.labels(session.kind).inc()
        try:
            leg.makeCall(uri, prm)
        except pj.Error as exc:
            leg.ended = True
            metrics.CALLBACKS.labels("failed").inc()
            log.error("[%s] CALLBACK: leg A to %s failed: %s", request.call_id, uri,
                      exc.info())
            return
        metrics.CALLBACKS.labels("placed").inc()
        log.info("[%s] CALLBACK: leg A %s to %s on %s (%s)", request.call_id,
                 leg.getInfo().callIdString, request.number, request.payer,
                 request.leg_a_code or "plain")

    def _reject(self, leg: Leg, code: int, reason: str) -> None:
        prm = pj.CallOpParam(True)
        prm.statusCode, prm.reason = code, reason
        self.rejected.append(leg)
        leg.hangup(prm)


def raise_fd_limit(wanted: int) -> None:
    """Each call holds an RTP and an RTCP socket (and a prompt file while one plays):
    lift the soft limit on open files towards `wanted`, as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        log.warning("[-] START: open files limited to %d, %d wanted", target, wanted)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tollgate-ivr", description=__doc__)
    parser.add_argument("--prompts", type=Path, help="prompt folder (default <var_dir>/prompts)")
    parser.add_argument("--brand-prompts", type=Path,
                        help="brand prompt folder <dir>/<brand>/<lang>/<name>.wav "
                             "(default <var_dir>/prompts/brands)")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    parser.add_argument("--pj-log-level", type=int, default=1, help="pjsip log level (0-6)")
    parser.add_argument("--max-sessions", type=int, default=None,
                        help="concurrent callers; each takes 2 pjsua call slots of the "
                             f"{PJSUA_MAX_CALLS} the third_party build has (PyPI's "
                             "pjsua2-python: 4) (default: the ivr_max_sessions setting)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    settings = config.load()
    prompt_dir = args.prompts or settings.var_path / "prompts"
    prompts.build(prompt_dir)
    brand_dir = args.brand_prompts or prompt_dir / "brands"
    if args.metrics_port:
        from prometheus_client import start_http_server
        start_http_server(args.metrics_port, addr=settings.ivr_address)
    server = Server(settings, prompt_dir, brand_dir, args.pj_log_level,
                    args.max_sessions or settings.ivr_max_sessions)
    server.start()

    def stop(signum: int, frame: object) -> None:
        server.stopping = True
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
