"""pjsua2 test phones: SIP user agents that call, answer, send DTMF and report what they saw.

pjsua2 allows one endpoint per process, so every phone of a test process lives in the
one `SipStack` (each phone on its own UDP port and account). The library runs
single-threaded: nothing happens unless the test waits through the stack::

    stack = SipStack.get()
    gateway = stack.phone("gw", answer=200)          # a UAS answering every INVITE
    mark = stack.phone("mark")
    call = mark.call(f"sip:1234@127.0.0.1:{port}", headers={"X-Foo": "1"})
    stack.wait_for(lambda: call.confirmed, 10, "answer")
    call.send_dtmf("4545")                            # RFC 4733; method="info" for SIP INFO
    leg = gateway.wait_incoming(10)                   # PhoneCall; leg.header("X-TG-Auth-ID")
    call.hangup()
    stack.wait_for(lambda: leg.disconnected, 10, "BYE")
"""
from __future__ import annotations

import array
import atexit
import math
import re
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

import pjsua2 as pj

from tests.servers import free_port

ADDRESS = "127.0.0.1"
RFC4733 = "rfc4733"
INFO = "info"


def parse_headers(message: str) -> dict[str, str]:
    """Lower-case header name -> first value of a raw SIP message."""
    head = message.replace("\r\n", "\n").split("\n\n", 1)[0]
    headers: dict[str, str] = {}
    for line in head.split("\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    return headers


class PhoneCall(pj.Call):
    """One call of a phone, outgoing or incoming, with everything it saw recorded."""

    def __init__(self, phone: "Phone", call_id: int = pj.PJSUA_INVALID_ID, request: str = ""):
        super().__init__(phone.account, call_id)
        phone.stack.objects.append(self)
        self.phone = phone
        self.request = request                     # the INVITE as received (incoming calls)
        self.headers = parse_headers(request)
        self.codes: list[int] = []                 # SIP status codes seen, in order
        self.states: list[str] = []
        self.dtmf: list[tuple[str, int]] = []      # (digit, pjsua method) received
        self.confirmed = self.disconnected = False
        self.last_code = 0
        self.last_reason = ""
        self.call_id = ""
        self.player: pj.AudioMediaPlayer | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.stream = "no audio stream"            # the stream as negotiated (for reports)
        self.rx_stat = "nothing received"          # its last sampled receive counters

    def header(self, name: str, default: str = "") -> str:
        """A header of the received INVITE (case-insensitive)."""
        return self.headers.get(name.lower(), default)

    # pjsua2 callbacks
    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        self.call_id = info.callIdString
        self.states.append(info.stateText)
        if info.lastStatusCode and (not self.codes or self.codes[-1] != info.lastStatusCode):
            self.codes.append(info.lastStatusCode)
        self.last_code = info.lastStatusCode
        self.last_reason = info.lastReason
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.confirmed = True
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected = True
            self.player = self.recorder = None

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        self.stream = self._describe_stream()
        audio = self.audio()
        if audio is not None and self.player is not None:
            self.player.startTransmit(audio)
        if audio is not None and self.recorder is not None:
            audio.startTransmit(self.recorder)

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        self.dtmf.append((prm.digit, prm.method))

    # media
    def audio(self) -> pj.AudioMedia | None:
        """The call's active audio, None before media is up or after the call."""
        if self.disconnected:
            return None
        try:
            info = self.getInfo()  # keep it: media items point into it
            for mi in info.media:
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    return self.getAudioMedia(mi.index)
        except pj.Error:
            pass
        return None

    def _stat(self) -> pj.StreamStat | None:
        try:
            info = self.getInfo()
            for mi in info.media:
                if mi.type == pj.PJMEDIA_TYPE_AUDIO:
                    return self.getStreamStat(mi.index)
        except pj.Error:
            pass
        return None

    def rx_packets(self) -> int:
        """RTP packets received so far (sampled while the stack runs; kept after the call)."""
        stat = None if self.disconnected else self._stat()
        if stat is not None:
            rx = stat.rtcp.rxStat
            self._rx = rx.pkt
            self.rx_stat = (f"rx {rx.pkt} discarded {rx.discard} lost {rx.loss} "
                            f"tx {stat.rtcp.txStat.pkt}")
            if not rx.pkt:  # did anything reach the socket? (the stream may drop it)
                self.rx_stat += f", last RTP from {self._rtp_source()}"
        return getattr(self, "_rx", 0)

    def tx_packets(self) -> int:
        """RTP packets sent so far (20 ms each: 50 a second of what the phone says)."""
        stat = None if self.disconnected else self._stat()
        if stat is not None:
            self._tx = stat.rtcp.txStat.pkt
        return getattr(self, "_tx", 0)

    def _rtp_source(self) -> str:
        try:
            info = self.getInfo()
            for mi in info.media:
                if mi.type == pj.PJMEDIA_TYPE_AUDIO:
                    return self.getMedTransportInfo(mi.index).srcRtpName or "nowhere"
        except pj.Error:
            pass
        return "unknown"

    def _describe_stream(self) -> str:
        """Local socket, remote address, codec and direction of the audio stream."""
        try:
            info = self.getInfo()
            for mi in info.media:
                if mi.type == pj.PJMEDIA_TYPE_AUDIO:
                    stream = self.getStreamInfo(mi.index)
                    local = self.getMedTransportInfo(mi.index).localRtpName
                    return (f"stream {local} -> {stream.remoteRtpAddress} "
                            f"{stream.codecName}/pt {stream.txPt}/{stream.rxPt} "
                            f"dir {stream.dir} media status {mi.status}")
        except pj.Error as exc:
            return f"stream unknown: {exc.info()}"
        return "no audio stream"

    def media_summary(self) -> str:
        """This phone's audio stream and how many packets it counted (for the report of a
        call whose audio never came; the last sample when the call has ended)."""
        if not self.disconnected:
            self.stream = self._describe_stream()
            self.rx_packets()
        return f"phone {self.stream}; {self.rx_stat}"

    def play(self, wav: str | Path, loop: bool = True) -> None:
        """Send a WAV file into the call (now, or as soon as media is up)."""
        self.player = pj.AudioMediaPlayer()
        self.phone.stack.objects.append(self.player)
        self.player.createPlayer(str(wav), 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        audio = self.audio()
        if audio is not None:
            self.player.startTransmit(audio)

    def record(self, wav: str | Path) -> None:
        """Record what the far end sends into a WAV file until stop_recording()."""
        self.recorder = pj.AudioMediaRecorder()
        self.phone.stack.objects.append(self.recorder)
        self.recorder.createRecorder(str(wav))
        audio = self.audio()
        if audio is not None:
            audio.startTransmit(self.recorder)

    def stop_recording(self) -> None:
        audio = self.audio()
        if audio is not None and self.recorder is not None:
            audio.stopTransmit(self.recorder)
        self.recorder = None

    # signalling
    def send_dtmf(self, digits: str, method: str = RFC4733) -> None:
        """Send digits as RFC 4733 events or as SIP INFO (application/dtmf-relay)."""
        prm = pj.CallSendDtmfParam()
        prm.digits = digits
        prm.method = (pj.PJSUA_DTMF_METHOD_SIP_INFO if method == INFO
                      else pj.PJSUA_DTMF_METHOD_RFC2833)
        self.sendDtmf(prm)

    def answer_with(self, code: int = 200, reason: str = "",
                    headers: dict[str, str] | None = None) -> None:
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        if reason:
            prm.reason = reason
        for name, value in (headers or {}).items():
            header = pj.SipHeader()
            header.hName, header.hValue = name, value
            prm.txOption.headers.append(header)
        self.answer(prm)

    def hangup_with(self, code: int = 0) -> None:
        """BYE, CANCEL, or a final answer `code` for an unanswered incoming call."""
        if self.disconnected:
            return
        prm = pj.CallOpParam(True)
        if code:
            prm.statusCode = code
        try:
            self.hangup(prm)
        except pj.Error:
            pass


class _Account(pj.Account):
    def __init__(self, phone: "Phone"):
        super().__init__()
        self.phone = phone
        self.reg_code = 0

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        self.phone._incoming(prm)

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        self.reg_code = prm.code

    def onMwiInfo(self, prm: pj.OnMwiInfoParam) -> None:
        """An unsolicited message-summary NOTIFY (voicemail's message waiting)."""
        try:
            self.phone.mwi.append(prm.rdata.wholeMsg)
        except (AttributeError, pj.Error):
            self.phone.mwi.append("")


class Phone:
    """A SIP phone on its own UDP port: places calls and, as a UAS, answers them.

    answer: final code for incoming INVITEs (200 answers, 4xx/5xx refuses, None rings
    with 180 until the test calls answer_with()).
    """

    def __init__(self, stack: "SipStack", name: str, port: int | None = None,
                 answer: int | None = 200, reason: str = ""):
        self.stack, self.name = stack, name
        self.port = port or free_port()
        self.answer, self.reason = answer, reason
        self.calls: list[PhoneCall] = []
        self.incoming: list[PhoneCall] = []
        self.mwi: list[str] = []   # message-summary NOTIFYs received
        tc = pj.TransportConfig()
        tc.port = self.port
        tc.boundAddress = tc.publicAddress = ADDRESS
        self.transport_id = stack.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
        self.uri = f"sip:{name}@{ADDRESS}:{self.port}"
        self.account = _Account(self)
        stack.objects.append(self.account)
        self.account.create(self._config(self.uri))
        stack.phones.append(self)

    def _config(self, id_uri: str) -> pj.AccountConfig:
        cfg = pj.AccountConfig()
        cfg.idUri = id_uri
        cfg.sipConfig.transportId = self.transport_id
        media = cfg.mediaConfig.transportConfig
        media.port = 0
        media.boundAddress = media.publicAddress = ADDRESS
        return cfg

    def register(self, registrar: str, user: str, password: str, domain: str,
                 timeout: float = 10.0) -> int:
        """REGISTER user@domain at `registrar` (sip:host:port); returns the final code."""
        cfg = self._config(f"sip:{user}@{domain}")
        cfg.regConfig.registrarUri = registrar
        cfg.regConfig.timeoutSec = 300
        cfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        cfg.sipConfig.proxies.append(registrar + ";lr")
        self.account.reg_code = 0
        self.account.modify(cfg)
        self.stack.wait_for(lambda: self.account.reg_code >= 200, timeout, f"{user} REGISTER")
        return self.account.reg_code

    def call(self, uri: str, headers: dict[str, str] | None = None,
             from_uri: str = "") -> PhoneCall:
        """INVITE `uri` with extra headers (and another From, as a gateway presents the
        caller's number); returns the call at once."""
        call = PhoneCall(self)
        prm = pj.CallOpParam(True)
        if from_uri:
            prm.txOption.localUri = from_uri
        for name, value in (headers or {}).items():
            header = pj.SipHeader()
            header.hName, header.hValue = name, value
            prm.txOption.headers.append(header)
        call.makeCall(uri, prm)
        self.calls.append(call)
        return call

    def _incoming(self, prm: pj.OnIncomingCallParam) -> None:
        call = PhoneCall(self, prm.callId, prm.rdata.wholeMsg)
        self.calls.append(call)
        self.incoming.append(call)
        call.answer_with(self.answer or 180, self.reason if self.answer else "")

    def wait_incoming(self, timeout: float = 10.0, count: int = 1) -> PhoneCall:
        """The count-th incoming call, waiting for it."""
        self.stack.wait_for(lambda: len(self.incoming) >= count, timeout,
                            f"INVITE #{count} at {self.name}")
        return self.incoming[count - 1]


class _Endpoint(pj.Endpoint):
    def __init__(self, stack: "SipStack"):
        super().__init__()
        self.stack = stack

    def onSelectAccount(self, prm: pj.OnSelectAccountParam) -> None:
        # all phones share 127.0.0.1: pick the phone by the port in the Request-URI
        parts = prm.rdata.wholeMsg.split("\n", 1)[0].split(" ")
        match = re.match(r"sips?:(?:[^@]*@)?[^:;>]+:(\d+)", parts[1] if len(parts) > 1 else "")
        for phone in self.stack.phones:
            if match and int(match.group(1)) == phone.port:
                prm.accountIndex = phone.account.getId()


class SipStack:
    """The process-wide pjsua2 endpoint: null audio, single-threaded, driven by waits."""

    _instance: "SipStack | None" = None

    def __init__(self, log_level: int = 1):
        self.phones: list[Phone] = []
        # every pjsua2 object made here: disowned before libDestroy, as Python may free
        # them after the library is gone (pjsua asserts then)
        self.objects: list[object] = []
        self.ep = _Endpoint(self)
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 32
        cfg.medConfig.sndAutoCloseTime = -1  # else the media clock stops after 1 s
        cfg.medConfig.noVad = True
        # RTP is read by the thread that runs SIP (libHandleEvents), on SIP's ioqueue. With
        # pjsua's own media ioqueue and worker thread, about one call in 1,000 never read
        # a packet: the socket had 400 waiting, the transport had completed no read at all
        # (its last RTP source empty); measured with a loopback capture under the stress of
        # a full test run. One thread, one ioqueue: the receive is always armed.
        cfg.medConfig.hasIoqueue = False
        cfg.medConfig.threadCnt = 0
        cfg.medConfig.clockRate = cfg.medConfig.sndClockRate = 8000
        cfg.logConfig.level = cfg.logConfig.consoleLevel = log_level
        self.ep.libInit(cfg)
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        self.ep.codecSetPriority("PCMU/8000/1", 255)
        self.ep.codecSetPriority("PCMA/8000/1", 254)

    @classmethod
    def get(cls) -> "SipStack":
        """The one stack of this process, started on first use, stopped at exit."""
        if cls._instance is None:
            cls._instance = cls()
            atexit.register(cls._instance.destroy)
        return cls._instance

    def phone(self, name: str = "phone", port: int | None = None, answer: int | None = 200,
              reason: str = "") -> Phone:
        return Phone(self, name, port, answer, reason)

    def poll(self, ms: int = 10) -> None:
        self.ep.libHandleEvents(ms)
        for phone in self.phones:  # the stream's counters vanish with the call: sample them
            for call in phone.calls:
                if not call.disconnected:
                    call.rx_packets()

    def wait_for(self, predicate: Callable[[], object], timeout: float = 10.0,
                 what: str = "condition") -> None:
        """Run the SIP stack until predicate() holds; TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"waited {timeout}s for {what}")
            self.poll(10)

    def sleep(self, seconds: float) -> None:
        """Let the stack run for a while (media, retransmissions)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll(10)

    def hangup_all(self, timeout: float = 5.0) -> None:
        """End every call of every phone and wait until they are gone."""
        calls = [c for p in self.phones for c in p.calls if not c.disconnected]
        for call in calls:
            call.hangup_with()
        try:
            self.wait_for(lambda: all(c.disconnected for c in calls), timeout, "hangups")
        except TimeoutError:
            self.ep.hangupAllCalls()
            self.sleep(0.2)

    def remove(self, phone: Phone) -> None:
        """Drop a phone: its calls ended, its account and transport closed."""
        for call in phone.calls:
            call.hangup_with()
        self.wait_for(lambda: all(c.disconnected for c in phone.calls), 5.0, "phone hangups")
        phone.calls.clear()
        phone.incoming.clear()
        self.phones.remove(phone)
        phone.account.shutdown()
        self.ep.transportClose(phone.transport_id)
        self.sleep(0.05)

    def destroy(self) -> None:
        if SipStack._instance is not self:
            return
        self.ep.hangupAllCalls()
        self.sleep(0.3)
        for phone in self.phones:
            phone.calls.clear()
            phone.incoming.clear()
            phone.account.shutdown()
        self.phones.clear()
        for obj in self.objects:
            obj.thisown = False
        self.objects.clear()
        self.ep.libDestroy()
        SipStack._instance = None


class SigningRelay:
    """Plays Kamailio's part in front of the IVR: relays a phone's SIP to `target` and adds
    signed headers to each initial INVITE, computed over the INVITE's real Call-ID.

    pjsua picks a Call-ID only while sending, so a phone cannot sign its own INVITE;
    this relay can, as Kamailio does. `sign(call_id)` returns the headers to add.
    Responses go back to the phone that sent the request; in-dialog requests that
    follow Contact bypass the relay, as they would bypass a proxy without Record-Route.
    """

    def __init__(self, target_port: int, sign: Callable[[str], dict[str, str]],
                 target_host: str = ADDRESS):
        self.target = (target_host, target_port)
        self.sign = sign
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ADDRESS, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.uri = f"sip:{ADDRESS}:{self.port}"
        self.signed: list[str] = []   # Call-IDs of the INVITEs it signed
        self._phones: dict[str, tuple[str, int]] = {}
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        self._thread.join(2)
        self.sock.close()

    def _run(self) -> None:
        while self._running:
            try:
                data, addr = self.sock.recvfrom(65535)
            except (socket.timeout, OSError):
                continue
            self._relay(data.decode("utf-8", "replace"), addr)

    def _relay(self, message: str, addr: tuple[str, int]) -> None:
        call_id = parse_headers(message).get("call-id") or parse_headers(message).get("i", "")
        if addr == self.target:
            phone = self._phones.get(call_id)
            if phone is not None:
                self.sock.sendto(message.encode(), phone)
            return
        self._phones[call_id] = addr
        first, _, rest = message.partition("\r\n")
        to = parse_headers(message).get("to", "")
        if first.startswith("INVITE ") and ";tag=" not in to:
            added = "".join(f"{k}: {v}\r\n" for k, v in self.sign(call_id).items())
            message = first + "\r\n" + added + rest
            self.signed.append(call_id)
        self.sock.sendto(message.encode(), self.target)


def make_tone(path: Path, freq: int = 1000, seconds: float = 3.0) -> Path:
    """A sine WAV (8 kHz mono 16-bit) made by sox."""
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path),
                    "synth", str(seconds), "sine", str(freq), "vol", "0.5"], check=True)
    return path


def read_samples(path: Path) -> tuple[array.array, int]:
    """16-bit samples and rate of a WAV, also one pjsua2 is still writing.

    pjsua2 fixes the RIFF sizes only when its recorder is destroyed, so the sizes are
    not trusted: the data chunk runs to the end of the file.
    """
    raw = Path(path).read_bytes()
    rate = int.from_bytes(raw[24:28], "little") if raw[:4] == b"RIFF" else 8000
    pos = 12
    while pos + 8 <= len(raw) and raw[pos:pos + 4] != b"data":
        pos += 8 + int.from_bytes(raw[pos + 4:pos + 8], "little")
    data = raw[pos + 8:]
    samples = array.array("h")
    samples.frombytes(data[:len(data) - len(data) % 2])
    return samples, rate


def rms(path: Path) -> float:
    """Root mean square level of a 16-bit WAV (0 = silence, 32767 = full scale)."""
    samples, _ = read_samples(path)
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def tone_fraction(path: Path, freq: float) -> float:
    """Share of the recording's energy at `freq` (Goertzel over the loudest second).

    Near 1 for a pure tone, near 0 for speech or silence.
    """
    samples, rate = read_samples(path)
    if not samples:
        return 0.0
    n = min(len(samples), rate)
    best = max(range(0, len(samples) - n + 1, max(1, n // 2)),
               key=lambda i: sum(s * s for s in samples[i:i + n]))
    block = samples[best:best + n]
    energy = sum(s * s for s in block)
    if energy == 0:
        return 0.0
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in block:
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return 2 * power / n / energy
