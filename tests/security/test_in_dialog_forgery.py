"""In-dialog forgery: a request with a To-tag and a Route to the proxy, but no dialog the
proxy made, is never relayed: not to the PSTN gateway (a free toll call) and not to any
other address (an open relay). Raw SIP from another loopback address, as an attacker on
the network would send it."""
from __future__ import annotations

import select
import socket
import uuid

import pytest

pytestmark = pytest.mark.e2e

ATTACKER = "127.0.0.2"
OUTSIDE = "127.0.0.3"
METHODS = ["INVITE", "ACK", "BYE", "OPTIONS", "INFO", "UPDATE", "REFER", "NOTIFY",
           "MESSAGE", "PRACK", "SUBSCRIBE", "PUBLISH"]
SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def udp(address: str, port: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, port))
    return s


@pytest.fixture(scope="module")
def listeners(tg):
    """What reaches the gateway's address and an outside address (nothing should)."""
    gateway = udp("127.0.0.1", tg.gateway_port)
    outside = udp(OUTSIDE)
    yield {"gateway": gateway, "outside": outside}
    gateway.close()
    outside.close()


def forged(tg, method: str, target: str, port: int, route_params: str = "") -> tuple[bytes, str]:
    call_id = uuid.uuid4().hex
    proxy = tg.sip_target
    body = SDP if method == "INVITE" else ""
    text = (f"{method} sip:12125550100@{target} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {ATTACKER}:{port};branch=z9hG4bK{uuid.uuid4().hex[:12]}\r\n"
            f"Route: <sip:{proxy};lr{route_params}>\r\n"
            f"From: <sip:17785551209@{ATTACKER}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:12125550100@{target}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 2 {method}\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:17785551209@{ATTACKER}:{port}>\r\n"
            + ("Event: presence\r\n" if method in ("SUBSCRIBE", "NOTIFY", "PUBLISH") else "")
            + ("Refer-To: <sip:12125550100@127.0.0.1>\r\n" if method == "REFER" else "")
            + ("RAck: 1 1 INVITE\r\n" if method == "PRACK" else "")
            + ("Content-Type: application/sdp\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n{body}")
    return text.encode(), call_id


def received(sock: socket.socket, timeout: float) -> list[bytes]:
    got = []
    while select.select([sock], [], [], timeout)[0]:
        got.append(sock.recv(65535))
        timeout = 0.05
    return got


@pytest.mark.parametrize("route_params", ["", ";did=1a2.b3c", ";ftag=x;did=0.0"],
                         ids=["plain", "forged-did", "zero-did"])
@pytest.mark.parametrize("where", ["gateway", "outside"])
def test_no_forged_in_dialog_request_is_relayed(tg, listeners, where, route_params):
    outside_port = listeners["outside"].getsockname()[1]
    target = tg.settings.pstn_gateway if where == "gateway" else f"{OUTSIDE}:{outside_port}"
    attacker = udp(ATTACKER)
    try:
        answers = {}
        for method in METHODS:
            data, call_id = forged(tg, method, target, attacker.getsockname()[1], route_params)
            attacker.sendto(data, (tg.settings.sip_address, tg.settings.sip_port))
            replies = received(attacker, 2.0 if method != "ACK" else 0.3)
            answers[method] = [r.split(b"\r\n", 1)[0].decode() for r in replies]
        # a relayed request would have left before the proxy's answer; give stragglers a
        # moment on both listeners all the same
        leaked = {name: received(sock, 0.5) for name, sock in listeners.items()}
    finally:
        attacker.close()
    assert leaked == {"gateway": [], "outside": []}, "a forged in-dialog request was relayed"
    for method, lines in answers.items():
        if method == "ACK":
            assert lines == [], "an ACK gets no answer"
        else:
            assert lines == ["SIP/2.0 481 Call/Transaction Does Not Exist"], (method, lines)
    assert "Traceback" not in tg.log("kamailio")
