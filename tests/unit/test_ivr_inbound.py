"""Trust rules of the IVR: who may send it calls, and what the toll leg carries."""
from __future__ import annotations

import pytest

from billing import internal
from ivr.inbound import host_of, info_answer, parse_headers, toll_headers, toll_uri, verify_invite

pytestmark = pytest.mark.unit

SECRET = b"k" * 32
NOW = 1_795_300_000


def invite(call_id: str, headers: dict[str, str]) -> str:
    lines = ["INVITE sip:442071234567@127.0.0.1:5080 SIP/2.0", f"Call-ID: {call_id}",
             "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\nv=0\r\nX-TG-Account: body-is-not-a-header\r\n"


def signed(call_id: str = "abc", **kw) -> dict[str, str]:
    data = internal.Internal(account=kw.get("account", "17785551210"),
                             dest=kw.get("dest", "442071234567"), session=call_id,
                             app=kw.get("app", "1"), ani=kw.get("ani", ""))
    return internal.sign(SECRET, call_id, data, now=NOW)


def test_parse_headers_canonical_names_first_value_and_folding():
    msg = ("INVITE sip:x SIP/2.0\r\nx-tg-account: 1\r\nX-TG-Account: 2\r\n"
           "Subject: a\r\n b\r\n\r\nbody")
    headers = parse_headers(msg)
    assert headers[internal.ACCOUNT] == "1"
    assert headers["subject"] == "a b"


@pytest.mark.parametrize("address, host", [("127.0.0.1:5060", "127.0.0.1"),
                                           ("[::1]:5060", "::1"), ("10.0.0.1", "10.0.0.1")])
def test_host_of(address, host):
    assert host_of(address) == host


def test_signed_invite_from_kamailio_is_accepted(monkeypatch):
    monkeypatch.setattr(internal.time, "time", lambda: NOW)
    data = verify_invite(SECRET, "127.0.0.1", "127.0.0.1:5060", "abc", invite("abc", signed()))
    assert data is not None and data.account == "17785551210" and data.app == "1"


def test_signed_invite_from_elsewhere_is_refused(monkeypatch):
    monkeypatch.setattr(internal.time, "time", lambda: NOW)
    msg = invite("abc", signed())
    assert verify_invite(SECRET, "127.0.0.1", "10.1.1.1:5060", "abc", msg) is None


def test_headers_signed_for_another_call_id_are_refused(monkeypatch):
    monkeypatch.setattr(internal.time, "time", lambda: NOW)
    assert verify_invite(SECRET, "127.0.0.1", "127.0.0.1:5060", "xyz",
                         invite("xyz", signed("abc"))) is None


def test_unsigned_and_tampered_invites_are_refused(monkeypatch):
    monkeypatch.setattr(internal.time, "time", lambda: NOW)
    assert verify_invite(SECRET, "127.0.0.1", "127.0.0.1:5060", "abc", invite("abc", {})) is None
    tampered = {**signed(), internal.ACCOUNT: "17785551209"}
    assert verify_invite(SECRET, "127.0.0.1", "127.0.0.1:5060", "abc",
                         invite("abc", tampered)) is None


def test_expired_signature_is_refused(monkeypatch):
    monkeypatch.setattr(internal.time, "time", lambda: NOW + 3600)
    msg = invite("abc", signed())
    assert verify_invite(SECRET, "127.0.0.1", "127.0.0.1:5060", "abc", msg) is None


def test_signed_invite_without_account_and_app_or_without_dest_is_refused(monkeypatch):
    monkeypatch.setattr(internal.time, "time", lambda: NOW)
    for missing in ({"account": "", "app": ""}, {"dest": ""}):
        assert verify_invite(SECRET, "127.0.0.1", "127.0.0.1:5060", "abc",
                             invite("abc", signed(**missing))) is None


def test_a_call_to_an_access_number_names_its_app_and_ani_instead_of_an_account(monkeypatch):
    monkeypatch.setattr(internal.time, "time", lambda: NOW)
    data = verify_invite(SECRET, "127.0.0.1", "127.0.0.1:5060", "abc",
                         invite("abc", signed(account="", app="7", ani="0212345678")))
    assert data is not None and (data.app, data.ani, data.account) == ("7", "0212345678", "")


def test_toll_headers_verify_over_the_session_id():
    caller = internal.Internal(account="17785551210", dest="442071234567", session="abc", app="1")
    headers = toll_headers(SECRET, caller, "1778555#4545", ttl=60)
    data = internal.verify(SECRET, headers[internal.SESSION], headers)
    assert data == internal.Internal(account="17785551210", dest="442071234567", session="abc",
                                     auth_id="1778555#4545", app="1",
                                     nonce=headers[internal.NONCE],
                                     expires=int(headers[internal.EXPIRES]))


def test_toll_uri_escapes_the_number():
    assert toll_uri("442071234567", "127.0.0.1", 5060) == "sip:442071234567@127.0.0.1:5060"
    assert toll_uri("+44 20@x", "10.0.0.1", 5060) == "sip:+44%2020%40x@10.0.0.1:5060"


def reply(status: str, cseq: str, *headers: str) -> str:
    return "\r\n".join([status, "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK2",
                        f"CSeq: {cseq}", *headers]) + "\r\n\r\n"


@pytest.mark.parametrize("message, answer", [
    (reply("SIP/2.0 200 Reauthorized", "3 INFO", "X-TG-Max-Duration: 180"),
     (200, "Reauthorized", 180)),
    (reply("SIP/2.0 200 Rerated", "4 INFO"), (200, "Rerated", None)),
    (reply("SIP/2.0 409 Funds do not cover the new rate", "4 INFO"),
     (409, "Funds do not cover the new rate", None)),
    (reply("SIP/2.0 403 Bad\x07bell", "4 INFO"), (403, "Bad?bell", None)),
    (reply("SIP/2.0 200 OK", "5 INFO", "X-TG-Max-Duration: 99999999999"), (200, "OK", None)),
    (reply("SIP/2.0 100 Trying", "4 INFO"), None),          # provisional: not the answer
    (reply("SIP/2.0 200 OK", "2 INVITE"), None),            # another method's reply
    (reply("SIP/2.0 200 OK", "2 INFOX"), None),
    ("INFO sip:x@127.0.0.1 SIP/2.0\r\nCSeq: 4 INFO\r\n\r\n", None),  # a request
    ("", None),
])
def test_the_answer_to_an_info_is_read_from_its_final_reply(message, answer):
    assert info_answer(message) == answer
