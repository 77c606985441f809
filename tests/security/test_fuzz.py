"""Bounded random fuzzing of the real proxy: hypothesis builds a well-formed SIP request
from a small grammar, then applies one to four mutations to it (8-bit and NUL bytes,
bare CR and LF, folded and very long values, odd methods, missing and doubled headers,
garbage Content-Length, forged X-TG headers, odd digest usernames) and sends it over UDP
from its own loopback source. Mutations aim past Kamailio's parser (it drops most
random bytes before any route runs) at what our Python reads. No request may cost a
Python exception; afterwards every worker is alive and OPTIONS is answered.

Deterministic (derandomize): a failure repeats. TOLLGATE_FUZZ_EXAMPLES runs more.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.security import rawsip
from tests.security.rawsip import PORT

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("TOLLGATE_FUZZ_EXAMPLES", "300"))
REPLY_WAIT = 0.3   # s; most requests are answered at once, silence costs this much
MAX_DATAGRAM = 60000
NO_LENGTH = b"(no Content-Length header)"

NASTY = (b"\xff", b"\xfe\xff", b"\x00", b"\x80", b"\xc3\x28", b"\xed\xa0\x80", b"\xe9t\xe9",
         b"\xef\xbb\xbf", b"\r", b"\n", b"\t", b"\x7f", b"\x1b[0m", b"%00", b"%ff", b'"',
         b"\\", b"<", b">", b";", b",", b":", b"=", b"@", b"  ")
EIGHT_BIT = (b"\xff", b"\xfe\xff", b"\x80", b"\xc3\x28", b"\xe9t\xe9", b"\xed\xa0\x80")
METHODS = (b"INVITE", b"OPTIONS", b"REGISTER", b"BYE", b"CANCEL", b"ACK", b"MESSAGE",
           b"SUBSCRIBE", b"NOTIFY", b"INFO", b"PRACK", b"UPDATE", b"REFER", b"PUBLISH")
ODD_METHODS = (b"invite", b"INVITE\xff", b"\xffOPTIONS", b"X" * 300, b"FOO",
               b"!interesting-Method0123456789_*+`.%indeed'~")
COMPACT = {b"From": b"f", b"To": b"t", b"Call-ID": b"i", b"Via": b"v", b"Contact": b"m",
           b"Content-Length": b"l", b"Content-Type": b"c", b"Subject": b"s"}
INTERNAL = (b"X-TG-Account", b"X-TG-Auth-ID", b"X-TG-Dest", b"X-TG-Session", b"X-TG-App",
            b"X-TG-Expires", b"X-TG-Sig", b"X-TG-Nonce", b"x-tg-account", b"X-tG-sIg")
# headers whose values Kamailio carries without parsing them: our Python reads them raw
FREE_TEXT = (b"Subject", b"User-Agent", b"X-Anything", b"Organization")


class Request:
    """A request as parts a mutation can change: start line, header lines, body."""

    def __init__(self, method: bytes, tag: bytes):
        self.method = method
        self.ruri = b"sip:12125550123@tollgate.local"
        self.version = b"SIP/2.0"
        self.headers: list[list[bytes]] = [   # [name, separator, value]
            [b"Via", b": ", b"SIP/2.0/UDP 127.0.0.1" + PORT + b";branch=z9hG4bK" + tag],
            [b"From", b": ", b'"Fuzz" <sip:17785551210@tollgate.local>;tag=' + tag],
            [b"To", b": ", b"<sip:12125550123@tollgate.local>"],
            [b"Call-ID", b": ", b"fuzz-" + tag],
            [b"CSeq", b": ", b"1 " + method],
            [b"Max-Forwards", b": ", b"70"],
            [b"Contact", b": ", b"<sip:17785551210@127.0.0.1" + PORT + b">"],
            [b"User-Agent", b": ", b"fuzz"],
        ]
        self.body = rawsip.sdp() if method == b"INVITE" else b""
        if self.body:
            self.headers.append([b"Content-Type", b": ", b"application/sdp"])
        self.content_length: bytes | None = None   # None: the body's real length
        self.eols: dict[int, bytes] = {}            # line index -> its line end
        self.eol = b"\r\n"

    def find(self, name: bytes) -> list[bytes] | None:
        return next((h for h in self.headers if h[0] == name), None)

    def encode(self) -> bytes:
        length = str(len(self.body)).encode() if self.content_length is None \
            else self.content_length
        lines = [self.method + b" " + self.ruri + b" " + self.version]
        lines += [name + sep + value for name, sep, value in self.headers]
        if length != NO_LENGTH:
            lines.append(b"Content-Length: " + length)
        head = b"".join(line + self.eols.get(i, self.eol) for i, line in enumerate(lines))
        return (head + self.eol + self.body)[:MAX_DATAGRAM]


def _insert(draw, value: bytes, pieces=NASTY) -> bytes:
    at = draw(st.integers(0, len(value)))
    return value[:at] + draw(st.sampled_from(pieces)) + value[at:]


def _header(draw, req: Request) -> list[bytes]:
    return req.headers[draw(st.integers(0, len(req.headers) - 1))]


# each mutation changes one thing the way a broken phone or an attacker would
def m_nasty_value(draw, req):
    h = _header(draw, req)
    h[2] = _insert(draw, h[2])


def m_free_text(draw, req):
    req.headers.append([draw(st.sampled_from(FREE_TEXT)), b": ",
                        _insert(draw, b"hello world", NASTY + EIGHT_BIT * 3)])


def m_display_name(draw, req):
    name = b"".join(draw(st.lists(st.sampled_from(EIGHT_BIT + (b"Zo", b" ", b"\\\"")),
                                  min_size=1, max_size=6)))
    quoted = draw(st.booleans())
    from_ = req.find(b"From")
    if from_ is not None and b" <" in from_[2]:
        from_[2] = ((b'"' + name + b'"') if quoted else name) + from_[2][from_[2].index(b" <"):]


def m_body(draw, req):
    kind = draw(st.sampled_from(("sdp8bit", "binary", "latin1")))
    if kind == "sdp8bit":
        req.body = rawsip.sdp(session=_insert(draw, b"call", EIGHT_BIT))
    elif kind == "binary":
        req.body = draw(st.binary(min_size=1, max_size=400))
    else:
        req.body = rawsip.sdp() + b"a=tool:caf\xe9\r\n"
    if not any(h[0] == b"Content-Type" for h in req.headers):
        req.headers.append([b"Content-Type", b": ", b"application/sdp"])


def m_digest_user(draw, req):
    user = draw(st.one_of(st.sampled_from((b"1778555\xff", b"\xff", b"17785551210\x00x",
                                           b"1778555#4545", b'a"b', b"x" * 3000)),
                          st.binary(min_size=1, max_size=16)))
    name = draw(st.sampled_from((b"Proxy-Authorization", b"Authorization")))
    req.headers.append([name, b": ", b'Digest username="' + user + b'", realm="tollgate.local"'
                        b', nonce="abc", uri="' + req.ruri + b'", response="' + b"0" * 32
                        + b'"'])


def m_internal(draw, req):
    name = draw(st.sampled_from(INTERNAL))
    sep = draw(st.sampled_from((b": ", b" : ", b":", b"\t: ")))
    req.headers.insert(draw(st.integers(0, len(req.headers))),
                       [name, sep, draw(st.sampled_from((b"17785551209", b"", b"\xff",
                                                         b"00" * 32)))])


def m_line_end(draw, req):
    index = draw(st.integers(0, len(req.headers) + 1))
    req.eols[index] = draw(st.sampled_from((b"\n", b"\r", b"\n\r", b"\r\r\n")))


def m_all_lf(draw, req):
    req.eol = draw(st.sampled_from((b"\n", b"\r")))


def m_fold(draw, req):
    h = _header(draw, req)
    at = draw(st.integers(0, len(h[2])))
    h[2] = h[2][:at] + draw(st.sampled_from((b"\r\n ", b"\r\n\t", b"\n ", b"\r\n  \r\n "))) \
        + h[2][at:]


def m_long(draw, req):
    h = _header(draw, req)
    h[2] += draw(st.sampled_from((b"A", b"\xff", b";x=y", b",", b"9"))) * draw(
        st.integers(500, 8000))


def m_drop(draw, req):
    req.headers.remove(_header(draw, req))


def m_double(draw, req):
    h = _header(draw, req)
    req.headers.insert(draw(st.integers(0, len(req.headers))), list(h))


def m_content_length(draw, req):
    req.content_length = draw(st.one_of(
        st.sampled_from((b"-1", b"99999999999999999999", b"abc", b"", b" 5", b"0x10",
                         b"1e3", b"\xff", NO_LENGTH)),
        st.integers(0, 70000).map(lambda n: str(n).encode())))


def m_method(draw, req):
    req.method = draw(st.one_of(st.sampled_from(ODD_METHODS), st.binary(min_size=1,
                                                                         max_size=10)))
    cseq = req.find(b"CSeq")
    if cseq is not None and draw(st.booleans()):
        cseq[2] = b"1 " + req.method


def m_name(draw, req):
    h = _header(draw, req)
    kind = draw(st.sampled_from(("compact", "case", "space", "8bit")))
    if kind == "compact":
        h[0] = COMPACT.get(h[0], h[0])
    elif kind == "case":
        h[0] = h[0].swapcase()
    elif kind == "space":
        h[1] = draw(st.sampled_from((b" : ", b"\t:", b"  :  ")))
    else:
        h[0] = _insert(draw, h[0], EIGHT_BIT)


def m_ruri(draw, req):
    req.ruri = _insert(draw, req.ruri, NASTY + (b"%ff", b"%00"))


def m_to_tag(draw, req):
    """An in-dialog request: a To-tag, maybe a Route, nothing of ours behind it."""
    to = req.find(b"To")
    if to is not None:
        to[2] += b";tag=" + _insert(draw, b"abc123", (b"", b"\xff", b"\x00"))
    if draw(st.booleans()):
        req.headers.insert(0, [b"Route", b": ", b"<sip:127.0.0.1;lr;ftag=x>"])


MUTATIONS = (m_nasty_value, m_free_text, m_display_name, m_body, m_digest_user, m_internal,
             m_line_end, m_all_lf, m_fold, m_long, m_drop, m_double, m_content_length,
             m_method, m_name, m_ruri, m_to_tag)


@st.composite
def requests(draw) -> bytes:
    tag = draw(st.binary(min_size=4, max_size=4)).hex().encode()
    req = Request(draw(st.sampled_from(METHODS)), tag)
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=4)):
        mutation(draw, req)
    return req.encode()


def test_random_requests_cost_no_exception_worker_or_answer(tg):
    """EXAMPLES requests, each checked for a SIP answer (when one comes) and for any
    Python exception in Kamailio's log; then the workers and OPTIONS."""
    target = (tg.settings.sip_address, tg.settings.sip_port)
    sources = rawsip.Sources(42)
    workers = rawsip.all_processes(tg)
    whole_run = rawsip.LogWatch(tg.dir / "kamailio.log")
    recent = rawsip.LogWatch(tg.dir / "kamailio.log")

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=(Phase.explicit, Phase.generate),  # no shrinking: a live server
              suppress_health_check=list(HealthCheck))
    @given(requests())
    def one(message: bytes) -> None:
        with rawsip.Endpoint(target, sources.next()) as phone:
            phone.send(message)
            reply = phone.wait_final(REPLY_WAIT)
        assert reply is None or reply.code, f"not a SIP answer: {reply.raw[:200]!r}"
        logged = recent.new_problems()
        assert not logged, "\n".join([f"request {message[:600]!r} ->", *logged[:12]])

    one()
    problems = rawsip.kamailio_health(tg, workers, whole_run, sources.next())
    assert not problems, "\n".join(problems)
