"""A signed IVR leg cannot be replayed: the IVR's toll-leg INVITE, captured and sent again
from the IVR's address within the signature's lifetime (with a new branch, or under a new
Call-ID), is refused 403 and never reaches the gateway or holds the payer's funds."""
from __future__ import annotations

import select
import socket
import uuid

import pytest
import redis

from billing import internal
from ivr import inbound
from tests import tenants
from tests.stack import Stack
from tollgate import keyspace

pytestmark = pytest.mark.e2e

TOLL = "12125550188"


@pytest.fixture(scope="module")
def tg():
    stack = Stack(with_gateway=False).start()
    print(f"stack logs: {stack.dir}")
    yield stack
    stack.stop()


@pytest.fixture
def ivr_socket(tg):
    """The second IVR worker's address, held by the test: the source a spoofer would use."""
    tg.stop_program("ivr-1")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((tg.settings.ivr_address, tg.settings.ivr_sip_port + 1))
    yield sock
    sock.close()
    tg.restart("ivr-1")


def toll_leg(tg, port: int, tenant: tenants.IvrTenant, call_id: str) -> str:
    """The toll-leg INVITE the IVR sends once the caller keyed in the payer's PIN."""
    caller = internal.Internal(account=tenant.caller, dest=TOLL, session=uuid.uuid4().hex,
                               app="")
    headers = inbound.toll_headers(tg.settings.secret(), caller,
                                   f"{tenant.associated_number}#{tenant.pin}", ttl=60)
    proxy, ivr = tg.sip_target, f"{tg.settings.ivr_address}:{port}"
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 41000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    return (f"INVITE sip:{TOLL}@{proxy} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {ivr};branch=z9hG4bK{{branch}}\r\n"
            f"From: <sip:{tenant.caller}@{tg.settings.ivr_address}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:{TOLL}@{proxy}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:ivr@{ivr}>\r\nMax-Forwards: 70\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")


def final_answer(sip, sock: socket.socket, timeout: float = 10) -> str:
    """The status line of the first final answer (the phones keep running meanwhile)."""
    seen: list[str] = []

    def final() -> bool:
        while select.select([sock], [], [], 0)[0]:
            line = sock.recv(65535).split(b"\r\n", 1)[0].decode()
            if not line.startswith("SIP/2.0 1"):
                seen.append(line)
        return bool(seen)
    sip.wait_for(final, timeout, "a final answer")
    return seen[0]


def test_a_captured_toll_leg_is_good_for_one_invite(tg, sip, gateway, calls_end, ivr_socket):
    tenant = tenants.via_ivr(tg)
    gateway.answer, gateway.reason = 486, "Busy Here"  # the first INVITE ends at once
    kamailio = (tg.settings.sip_address, tg.settings.sip_port)
    template = toll_leg(tg, ivr_socket.getsockname()[1], tenant, call_id=uuid.uuid4().hex)
    ivr_socket.sendto(template.replace("{branch}", "first").encode(), kamailio)
    assert final_answer(sip, ivr_socket) == "SIP/2.0 486 Busy Here"
    sip.wait_for(lambda: len(gateway.incoming) == 1, 10, "the genuine leg at the gateway")
    # the same INVITE again: a new transaction of the same call, then under another Call-ID
    replays = [template.replace("{branch}", "replay1").replace("CSeq: 1 ", "CSeq: 2 "),
               template.replace("{branch}", "replay2").replace(
                   template.split("Call-ID: ")[1].split("\r\n")[0], uuid.uuid4().hex)]
    for replay in replays:
        ivr_socket.sendto(replay.encode(), kamailio)
        assert final_answer(sip, ivr_socket) == "SIP/2.0 403 Invalid internal signature"
    assert len(gateway.incoming) == 1, "a replayed toll leg reached the gateway"
    held = redis.Redis(port=tg.settings.redis_port).hgetall(
        keyspace.reservations("account", tenant.payer))
    assert held == {}, "a replay holds the payer's funds"
    assert "replayed" in tg.log("kamailio")
