"""On-demand call recordings (virtual-pbx-client.txt): rtpengine captures a recorded call's
media as one pcap in its recording directory; when the call has ended, the xDR writer files
it here as a WAV (8 kHz mono 16-bit, both directions mixed) under
<var>/recordings/<customer id>/, described by a row of `recordings`, and removes the capture.

The conversion is plain Python over the pcap (raw IP packets, linktype 101): each RTP stream
(by SSRC) is decoded (PCMU or PCMA) and placed at the time its packets were captured.
"""
from __future__ import annotations

import array
import glob
import hashlib
import logging
import struct
import sys
import time
import wave
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import msgpack
import psycopg
import redis

from tollgate import keyspace
from tollgate.config import Settings

log = logging.getLogger("tollgate.recordings")

RATE = 8000


def _ulaw(byte: int) -> int:
    """G.711 mu-law to 16-bit linear."""
    byte = ~byte & 0xFF
    value = (((byte & 0x0F) << 3) + 0x84) << ((byte & 0x70) >> 4)
    return 0x84 - value if byte & 0x80 else value - 0x84


def _alaw(byte: int) -> int:
    """G.711 A-law to 16-bit linear."""
    byte ^= 0x55
    segment, value = (byte & 0x70) >> 4, (byte & 0x0F) << 4
    value = value + 8 if segment == 0 else (value + 0x108) << (segment - 1)
    return value if byte & 0x80 else -value


# payload type -> the 256 linear values of its codes: PCMU, PCMA
DECODERS = {0: [_ulaw(b) for b in range(256)], 8: [_alaw(b) for b in range(256)]}
# a capture rtpengine has not closed yet is looked for again, for a while
WAIT_FOR_CAPTURE_S = 120
INSERT = """
INSERT INTO recordings (call_id, customer_id, account_id, cli, cld, started_at, seconds, path)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (call_id) DO NOTHING RETURNING id"""


@dataclass(frozen=True)
class Packet:
    """One RTP packet of a capture: when it was captured, its stream and its payload."""
    at: float
    ssrc: int
    payload_type: int
    payload: bytes


def rtp_packets(capture: bytes) -> list[Packet]:
    """The RTP packets of a pcap of raw IPv4/UDP packets (rtpengine's recording format)."""
    if len(capture) < 24:
        return []
    magic = struct.unpack("<I", capture[:4])[0]
    order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    packets, i = [], 24
    while i + 16 <= len(capture):
        sec, frac, size, _ = struct.unpack(order + "IIII", capture[i:i + 16])
        data = capture[i + 16:i + 16 + size]
        i += 16 + size
        if len(data) < 20 or data[0] >> 4 != 4 or data[9] != 17:
            continue  # not IPv4 UDP
        udp = data[(data[0] & 0x0F) * 4:]
        rtp = udp[8:]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        header = 12 + 4 * (rtp[0] & 0x0F)
        payload_type = rtp[1] & 0x7F
        if payload_type not in DECODERS or len(rtp) <= header:
            continue
        at = sec + frac / (1e9 if nano else 1e6)
        packets.append(Packet(at, struct.unpack("!I", rtp[8:12])[0], payload_type,
                              rtp[header:]))
    return packets


def mix(packets: list[Packet]) -> bytes:
    """16-bit linear audio of every stream, each packet at its capture time, summed (and
    clipped), little-endian as WAV wants it."""
    if not packets:
        return b""
    start = min(p.at for p in packets)
    pcm = array.array("i")
    for packet in packets:
        table = DECODERS[packet.payload_type]
        offset = int(round((packet.at - start) * RATE))
        end = offset + len(packet.payload)
        if len(pcm) < end:
            pcm.extend([0] * (end - len(pcm)))
        for i, code in enumerate(packet.payload, offset):
            pcm[i] += table[code]
    clipped = array.array("h", (max(-32768, min(32767, v)) for v in pcm))
    if sys.byteorder == "big":
        clipped.byteswap()
    return clipped.tobytes()


def write_wav(path: Path, pcm: bytes) -> Decimal:
    """The WAV file; its length in seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm)
    return (Decimal(len(pcm) // 2) / RATE).quantize(Decimal("0.001"))


class Recorder:
    """Files the captures of recorded calls that ended (keyspace.RECORDINGS jobs)."""

    def __init__(self, settings: Settings):
        self.root = settings.var_path / "recordings"
        self.spool = self.root / "spool"

    def captures(self, call_id: str) -> tuple[list[Path], list[Path]]:
        """rtpengine's pcaps and metadata files of a call (named after its Call-ID)."""
        name = glob.escape(call_id.replace("/", "_"))
        return ([Path(p) for p in glob.glob(str(self.spool / "pcaps" / f"{name}-*.pcap"))],
                [Path(p) for p in glob.glob(str(self.spool / "metadata" /
                                                f"rtpengine-meta-{name}-*"))])

    def path_of(self, customer_id: object, call_id: str) -> Path:
        """Where a call's recording is filed (the Call-ID may hold any character)."""
        digest = hashlib.sha256(call_id.encode()).hexdigest()[:24]
        return self.root / str(int(str(customer_id))) / f"{digest}.wav"

    def file(self, conn: psycopg.Connection, client: redis.Redis, most: int = 10) -> int:
        """File up to `most` ended recorded calls; returns how many were filed."""
        filed = 0
        for _ in range(most):
            raw = client.lpop(keyspace.RECORDINGS)
            if raw is None:
                break
            job = msgpack.unpackb(raw, raw=False)
            pcaps, metas = self.captures(str(job["call_id"]))
            if not pcaps:
                waited = time.time() - float(job.get("setup_ts") or 0)
                if waited < WAIT_FOR_CAPTURE_S and job.get("tries", 0) < 1000:
                    client.rpush(keyspace.RECORDINGS,
                                 msgpack.packb({**job, "tries": job.get("tries", 0) + 1}))
                else:  # a duplicate end event (already filed), or nothing was captured
                    log.info("[%s] RECORD: no capture to file", job["call_id"])
                break
            filed += self.file_one(conn, job, pcaps, metas)
        return filed

    def file_one(self, conn: psycopg.Connection, job: dict, pcaps: list[Path],
                 metas: list[Path]) -> int:
        packets = [p for path in pcaps for p in rtp_packets(path.read_bytes())]
        path = self.path_of(job["customer_id"], str(job["call_id"]))
        seconds = write_wav(path, mix(packets))
        started = datetime.fromtimestamp(float(job.get("setup_ts") or time.time()), timezone.utc)
        with conn.transaction():
            row = conn.execute(INSERT, (job["call_id"], int(job["customer_id"]), job["account"],
                                        job["cli"], job["cld"], started, seconds,
                                        str(path))).fetchone()
        for done in pcaps + metas:
            done.unlink(missing_ok=True)
        log.info("[%s] RECORD: filed %s s as %s", job["call_id"], seconds, path)
        return 1 if row else 0
