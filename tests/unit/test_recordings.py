"""Filing a recording: rtpengine's pcap of a call decoded and mixed into a WAV."""
from __future__ import annotations

import struct
import wave

import pytest

from billing import policy
from provisioning.recordings import DECODERS, mix, rtp_packets, write_wav

pytestmark = pytest.mark.unit


def pcap(packets: list[tuple[float, int, int, bytes]]) -> bytes:
    """A pcap of raw IPv4/UDP/RTP packets (linktype 101), as rtpengine writes them."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)]
    for seq, (at, ssrc, pt, payload) in enumerate(packets):
        rtp = struct.pack("!BBHII", 0x80, pt, seq, seq * 160, ssrc) + payload
        udp = struct.pack("!HHHH", 30000, 40000, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        sec = int(at)
        out.append(struct.pack("<IIII", sec, int((at - sec) * 1e6), len(ip), len(ip)) + ip)
    return b"".join(out)


def test_two_streams_of_two_seconds_make_two_seconds_of_audio(tmp_path):
    start = 1_800_000_000.0
    packets = [(start + i * 0.02, 1111, 0, bytes([0x80]) * 160) for i in range(100)]
    packets += [(start + i * 0.02 + 0.001, 2222, 8, bytes([0xD5]) * 160) for i in range(100)]
    found = rtp_packets(pcap(packets))
    assert len(found) == 200 and {p.ssrc for p in found} == {1111, 2222}
    seconds = write_wav(tmp_path / "r.wav", mix(found))
    assert abs(float(seconds) - 2.0) < 0.01
    with wave.open(str(tmp_path / "r.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        first = struct.unpack("<h", w.readframes(1))[0]
    assert first == DECODERS[0][0x80]   # the mu-law stream's loudest code, alone at first


def test_loud_streams_clip_instead_of_wrapping():
    loud = [(1.0, 1, 0, bytes([0x80]) * 160), (1.0, 2, 0, bytes([0x80]) * 160)]
    sample = struct.unpack("<h", mix(rtp_packets(pcap(loud)))[:2])[0]
    assert sample == 32767 if DECODERS[0][0x80] > 0 else sample == -32768


def test_garbage_is_no_audio():
    assert rtp_packets(b"") == [] and rtp_packets(b"\x00" * 100) == []
    assert mix([]) == b""


CLIENT = {"features": ["recording"], "recording": True,
          "on_demand_recording": "service_code", "recording_service_code": "*1"}


@pytest.mark.parametrize("client, dialed, number", [
    (CLIENT, "*112125550123", "12125550123"), (CLIENT, "12125550123", ""),
    (CLIENT, "*1", ""), ({**CLIENT, "recording": False}, "*112125550123", ""),
    ({**CLIENT, "features": ["billing"]}, "*112125550123", ""),
    ({**CLIENT, "on_demand_recording": "disabled"}, "*112125550123", ""),
    ({**CLIENT, "recording_service_code": "#77"}, "#7712125550123", "12125550123")])
def test_the_recording_service_code(client, dialed, number):
    assert policy.recorded_number(client, dialed) == number


@pytest.mark.parametrize("content_type, body, digit", [
    ("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", "5"),
    ("Application/DTMF-Relay; charset=x", "signal= *\r\n", "*"),
    ("application/dtmf", "#", "#"), ("application/dtmf", "55", ""),
    ("application/dtmf-relay", "Signal=X\r\n", ""), ("text/plain", "Signal=5", ""),
    ("", "", "")])
def test_dtmf_keys_of_sip_info(content_type, body, digit):
    assert policy.dtmf_digit(content_type, body) == digit


def test_the_code_keyed_during_a_call():
    client = {**CLIENT, "on_demand_recording": "dtmf", "recording_service_code": "*7"}
    assert policy.records_on_request(client, "dtmf")
    assert not policy.records_on_request(client, "service_code")
    assert policy.keyed_code(client, "12*7") and not policy.keyed_code(client, "*71")
