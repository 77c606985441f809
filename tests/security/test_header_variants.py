"""Forged internal headers (X-TG-*) from a phone, written every way a parser can be
fooled: after a bare LF inside another header line or right after the request line,
folded, among compact header forms, in mixed case, with spaces before the colon,
doubled, after a bare CR, next to 8-bit bytes in values, display names, SDP and the
digest username. The proxy must either refuse the request with a precise 4xx or strip
every X-TG* header before anything reaches the PSTN gateway or the IVR, and no variant
may cost a Python exception.

The phone is a raw UDP socket on a loopback source other than 127.0.0.1 (which is
trusted), answering Kamailio's digest challenge itself; each test provisions its own
account. The gateway is a raw UDP socket on the gateway port that keeps every request
byte for byte and answers 486; what it got is read the way the most liberal parser
would (a line ends at CRLF, LF or a bare CR; folded lines belong to the line above).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Callable

import pytest

from tests.security import rawsip

pytestmark = pytest.mark.e2e

TOLL_FREE = "18005550199"   # relayed straight to the gateway
TOLL = "12125550123"        # paid: goes to the IVR, which asks for a PIN
RACHEL = "17785551209"      # the demo account a forger would like to bill
WAIT = 10.0                 # s for a final answer (an answer ends the wait)
CRLF = b"\r\n"

FORGED = [b"X-TG-Account: " + RACHEL.encode(), b"X-TG-Auth-ID: 1778555#4545",
          b"X-TG-Dest: " + TOLL.encode(), b"X-TG-Session: forged-session",
          b"X-TG-App: 1", b"X-TG-Expires: 4102444800", b"X-TG-Nonce: 00",
          b"X-TG-Sig: " + b"00" * 32]


@dataclass
class Variant:
    """How a request carries the forged headers. `head` turns the request line and the
    header lines (no line ends) into the header block, empty line included; `body` may
    change the SDP; `user` is the digest username sent (None: the account's)."""
    name: str
    head: Callable[[bytes, list[bytes]], bytes]
    body: Callable[[bytes], bytes] = lambda sdp: sdp
    user: Callable[[bytes], bytes] | None = None
    display: bytes = b""       # the From display name, quoted as it should be sent
    compact: bool = False
    must_relay: bool = False   # a request nothing is wrong with: it has to go through


def crlf(start: bytes, lines: list[bytes]) -> bytes:
    return b"".join(line + CRLF for line in [start, *lines]) + CRLF


def after_bare_lf_in_header(start, lines):
    # every forged header hides after a bare LF inside a Subject line
    return crlf(start, lines + [b"Subject: hi" + b"".join(b"\n" + f for f in FORGED)])


def after_bare_lf_request_line(start, lines):
    return start + b"\n" + b"".join(line + CRLF for line in FORGED + lines) + CRLF


def all_bare_lf(start, lines):
    return b"".join(line + b"\n" for line in [start, *lines, *FORGED]) + b"\n"


def folded_values(start, lines):
    return crlf(start, lines + [f.replace(b": ", b":\r\n ", 1) for f in FORGED[:4]]
                + [f.replace(b": ", b":\r\n\t", 1) for f in FORGED[4:]])


def folded_into_other(start, lines):
    # a continuation line is part of Subject, not a header: it must stay one
    return crlf(start, lines + [b"Subject: hi" + b"".join(b"\r\n " + f for f in FORGED)])


def mixed_case(start, lines):
    def flip(f: bytes) -> bytes:
        name, value = f.split(b":", 1)
        return bytes(c ^ 0x20 if i % 2 and chr(c).isalpha() else c
                     for i, c in enumerate(name)) + b":" + value
    return crlf(start, lines + [flip(f) for f in FORGED] + [b"x-tg-ACCOUNT: " + RACHEL.encode()])


def space_before_colon(start, lines):
    seps = (b" :", b"\t:", b"  :", b" \t :")
    return crlf(start, lines + [f.replace(b":", seps[i % 4], 1) for i, f in enumerate(FORGED)])


def duplicated(start, lines):
    return crlf(start, FORGED[:2] + lines + FORGED + [b"X-TG-Account: 17785551211",
                                                      b"x-tg-account: 17785551210"])


def after_bare_cr(start, lines):
    # Kamailio reads "Subject: hi\rX-TG-Account: ..." as one header, pjsip as two
    return crlf(start, lines + [b"Subject: hi" + b"".join(b"\r" + f for f in FORGED)])


def unknown_names(start, lines):
    return crlf(start, lines + FORGED + [b"X-TG-Future: 1", b"X-Tg-Whatever: 1"])


def prefix_without_dash(start, lines):
    return crlf(start, lines + [b"X-TGAccount: " + RACHEL.encode(), b"X-TG: 1"])


def with_8bit_value(start, lines):
    return crlf(start, lines + FORGED + [b"X-TG-Account: 1778\xff5551209"])


def plain(start, lines):
    return crlf(start, lines + FORGED)


VARIANTS = [
    Variant("plain", plain, must_relay=True),
    Variant("after-bare-lf-in-header", after_bare_lf_in_header),
    Variant("after-bare-lf-request-line", after_bare_lf_request_line),
    Variant("all-bare-lf", all_bare_lf),
    Variant("folded-values", folded_values),
    Variant("folded-into-other-header", folded_into_other),
    Variant("compact-forms", plain, compact=True),
    Variant("mixed-case", mixed_case),
    Variant("space-before-colon", space_before_colon),
    Variant("duplicated", duplicated),
    Variant("after-bare-cr", after_bare_cr),
    Variant("unknown-x-tg-names", unknown_names),
    Variant("x-tg-prefix-without-dash", prefix_without_dash),
    Variant("8bit-in-x-tg-value", with_8bit_value),
    Variant("8bit-display-name", plain, display=b'"\xffMallory\xfe" '),
    Variant("8bit-sdp", plain, body=lambda sdp: sdp.replace(b"s=-", b"s=Caf\xe9 \xff")),
    Variant("8bit-digest-username", plain, user=lambda account: account + b"\xff"),
]
BY_NAME = {v.name: v for v in VARIANTS}


class Phone:
    """A phone on a raw UDP socket, registered nowhere, with an account of its own."""

    def __init__(self, tg, source: str, account: str, password: str):
        self.tg = tg
        self.ep = rawsip.Endpoint((tg.settings.sip_address, tg.settings.sip_port), source)
        self.account, self.password = account, password
        self.domain = tg.settings.sip_domain
        self.call_id = secrets.token_hex(10)
        self.tag = secrets.token_hex(4).encode()
        self.cseq = 0

    def request(self, method: str, ruri: str, variant: Variant, auth: bytes = b"") -> bytes:
        self.cseq += 1
        a, addr = self.account.encode(), self.ep.address.encode()
        names = (b"v", b"f", b"t", b"i", b"m", b"c", b"l") if variant.compact else (
            b"Via", b"From", b"To", b"Call-ID", b"Contact", b"Content-Type", b"Content-Length")
        sdp = rawsip.sdp(self.ep.address, 40000)
        body = variant.body(sdp)
        if method != "INVITE" and body == sdp:
            body = b""   # an OPTIONS carries a body only to carry the variant's bytes
        lines = [
            names[0] + b": SIP/2.0/UDP " + addr + rawsip.PORT + b";branch=" + rawsip.new_branch(),
            b"Max-Forwards: 70",
            names[1] + b": " + variant.display + b"<sip:" + a + b"@" + self.domain.encode()
            + b">;tag=" + self.tag,
            names[2] + b": <" + ruri.encode() + b">",
            names[3] + b": " + self.call_id.encode(),
            b"CSeq: %d " % self.cseq + method.encode(),
            names[4] + b": <sip:" + a + b"@" + addr + rawsip.PORT + b">",
        ]
        if auth:
            lines.append(auth)
        if body:
            lines.append(names[5] + b": application/sdp")
        lines.append(names[6] + b": %d" % len(body))
        start = method.encode() + b" " + ruri.encode() + b" SIP/2.0"
        return variant.head(start, lines) + body

    def user(self, variant: Variant) -> bytes:
        """The digest username the variant sends."""
        return variant.user(self.account.encode()) if variant.user else self.account.encode()

    def credentials(self, variant: Variant, ruri: str) -> bytes:
        """Credentials sent unasked (an OPTIONS is not challenged)."""
        return (b'Authorization: Digest username="' + self.user(variant) + b'", realm="'
                + self.domain.encode()
                + b'", nonce="0", uri="' + ruri.encode() + b'", response="' + b"0" * 32 + b'"')

    def send(self, message: bytes) -> int:
        """Send; the index of the first reply that can answer it."""
        after = len(self.ep.poll())
        self.ep.send(message)
        return after

    def close(self) -> None:
        self.ep.close()


def answer_challenge(phone: Phone, challenge: rawsip.Reply, method: str, ruri: str,
                     variant: Variant) -> bytes:
    return phone.request(method, ruri, variant, rawsip.digest(
        challenge, method, ruri, phone.user(variant), phone.password))


def refusal_problem(reply: rawsip.Reply | None, what: str) -> str:
    """'' when `reply` is a precise refusal; else what is wrong with it."""
    if reply is None:
        return f"{what}: no answer at all"
    if reply.code in (401, 407) or not 400 <= reply.code < 500:
        return f"{what}: neither relayed nor refused, got {reply}"
    if reply.code == 403 and reply.reason == "Forbidden":
        return f"{what}: refused as a wrong password ({reply}), not for what it carries"
    return ""


def leaked(request: bytes) -> list[str]:
    return [n for n in rawsip.header_names(request) if n.startswith("x-tg")]


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def sources():
    return rawsip.Sources(43)


@pytest.fixture(scope="module")
def workers(tg):
    return rawsip.all_processes(tg)


@pytest.fixture(scope="module")
def pstn(tg):
    """The gateway port of the stack, answered by a raw socket (tg starts no gateway)."""
    host, port = tg.settings.pstn_gateway.split(":")
    uas = rawsip.RawUas(host, int(port))
    yield uas
    uas.close()


@pytest.fixture
def kamailio_log(tg):
    return rawsip.LogWatch(tg.dir / "kamailio.log")


@pytest.fixture
def phone(tg, sources):
    """A fresh account (unique ID, may call via the PIN IVR) and a raw phone for it."""
    account = "1999" + "".join(secrets.choice("0123456789") for _ in range(7))
    password = "pw-" + secrets.token_hex(6)
    tg.cli("account", "create", account, "--customer", "Smart Calls, Ltd.",
           "--product", "Smart Calls Office", "--password", password,
           "--associated-number", "1778555", "--ivr-app", "Roaming PIN",
           "--billing-model", "credit", "--credit-limit", "5")
    p = Phone(tg, sources.next(), account, password)
    yield p
    p.close()


def invite(phone: Phone, pstn: rawsip.RawUas, dest: str, variant: Variant
           ) -> tuple[bytes, rawsip.Reply | None]:
    """INVITE `dest` as the variant writes it, answering the digest challenge; the
    request last sent and the final answer it got (None: nothing within WAIT s)."""
    ruri = f"sip:{dest}@{phone.domain}"
    sent = phone.request("INVITE", ruri, variant)
    after = phone.send(sent)
    rawsip.pump(lambda: phone.ep.final(after) is not None, WAIT, phone.ep, pstn)
    final = phone.ep.final(after)
    if final is not None and final.code == 407:
        sent = answer_challenge(phone, final, "INVITE", ruri, variant)
        after = phone.send(sent)
        rawsip.pump(lambda: phone.ep.final(after) is not None, WAIT, phone.ep, pstn)
        final = phone.ep.final(after)
    return sent, final


# ------------------------------------------------------------------------------ tests

@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_an_invite_to_the_gateway_carries_no_internal_header(tg, workers, pstn, kamailio_log,
                                                            phone, sources, variant):
    sent, final = invite(phone, pstn, TOLL_FREE, variant)
    problems = []
    relayed = pstn.invites(phone.call_id)
    if relayed:
        if final is not None and final.code >= 300:
            phone.ep.send(rawsip.ack_for(sent, final))
        for request in relayed:
            if leaked(request):
                head = request.split(b"\r\n\r\n", 1)[0]
                problems.append(f"the gateway got {leaked(request)} in {head!r}")
                break
    elif variant.must_relay:
        problems.append(f"not relayed: {final}")
    else:
        problems.append(refusal_problem(final, f"{variant.name} INVITE"))
    problems += rawsip.kamailio_health(tg, workers, kamailio_log, sources.next())
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_an_options_to_the_proxy_is_answered(tg, workers, kamailio_log, sources, variant):
    """OPTIONS to the proxy itself (no user part) is answered by our own script: 200, or
    a precise 4xx for a request it will not read; never silence or an exception."""
    p = Phone(tg, sources.next(), "17785551210", "")
    try:
        ruri = f"sip:{tg.settings.sip_domain}"
        auth = p.credentials(variant, ruri) if variant.user else b""
        after = p.send(p.request("OPTIONS", ruri, variant, auth))
        final = p.ep.wait_final(WAIT, after)
    finally:
        p.close()
    problems = [] if final is not None and final.code == 200 else [
        refusal_problem(final, f"{variant.name} OPTIONS")]
    problems += rawsip.kamailio_health(tg, workers, kamailio_log, sources.next())
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)


IVR_VARIANTS = [BY_NAME[n] for n in ("plain", "after-bare-lf-in-header",
                                     "after-bare-lf-request-line", "duplicated")]


@pytest.mark.parametrize("variant", IVR_VARIANTS, ids=lambda v: v.name)
def test_a_call_to_the_ivr_carries_only_the_proxys_own_internal_headers(
        tg, workers, pstn, kamailio_log, phone, sources, variant):
    """A paid call goes to the IVR with headers the proxy signed. A forged header that
    got through sits above them, and the IVR (first occurrence wins) then finds the
    signature wrong and refuses the call: so the IVR answering, and logging no TRUST
    refusal for the call, shows nothing forged reached it."""
    sent, final = invite(phone, pstn, TOLL, variant)
    problems = []
    if final is not None and 200 <= final.code < 300:
        route, contact = rawsip.route_set(final)
        phone.ep.send(rawsip.ack_for(sent, final, route, contact))
        after = phone.send(rawsip.bye_for(sent, final, route, contact))
        if phone.ep.wait_final(WAIT, after) is None:
            problems.append("the BYE to the IVR got no answer")
    elif final is not None and final.code >= 300:
        phone.ep.send(rawsip.ack_for(sent, final))
        if final.reason == "Forbidden" or variant.must_relay:
            problems.append(f"the IVR refused the call: {final}")
        else:
            problems.append(refusal_problem(final, f"{variant.name} INVITE"))
    else:
        problems.append(refusal_problem(final, f"{variant.name} INVITE"))
    trust = [line for line in tg.log("ivr").splitlines()
             if phone.call_id in line and "TRUST" in line]
    problems += [f"IVR: {line}" for line in trust]
    problems += rawsip.kamailio_health(tg, workers, kamailio_log, sources.next())
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)
