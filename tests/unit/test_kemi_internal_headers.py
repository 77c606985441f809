"""The internal-headers route step: X-TG-* counts only from the IVR with a valid signature."""
import types

import pytest

from tests.unit import fake_ksr

fake_ksr.install()
from billing import internal  # noqa: E402
from kemi import entry  # noqa: E402
from kemi.constants import EXIT, FLT_FROM_IVR  # noqa: E402
from kemi.runtime import Request  # noqa: E402

SECRET = b"k"
IVR = ("127.0.0.9", 5080)


class UsedNonces:
    """Stands in for the one Redis command the step sends (SET NX PX); e2e tests use Redis."""

    def __init__(self):
        self.keys = {}

    def set(self, key, value, nx=False, px=None):
        if nx and key in self.keys:
            return None
        self.keys[key] = px
        return True


USED = UsedNonces()
RAW = ""


def _runtime():
    return types.SimpleNamespace(secret=SECRET, req=Request(text=RAW), redis=USED,
                                 from_ivr=lambda ip, port: (ip, port) == IVR)


def _request(source, headers: str, call_id="c1", line_end="\r\n"):
    global RAW
    ksr = fake_ksr.install()
    RAW = (f"INVITE sip:12125550123@proxy SIP/2.0{line_end}Via: SIP/2.0/UDP x\r\n"
           f"Call-ID: {call_id}\r\n{headers}Content-Length: 0\r\n\r\n")
    ksr.pvs.update({"$mb": RAW, "$si": source[0], "$sp": source[1], "$ci": call_id})
    for line in headers.replace("\r\n", "\n").split("\n"):
        if ":" in line:
            name, value = line.split(":", 1)
            ksr.pvs.setdefault(f"$hdr({name.strip()})", value.strip())
    return ksr


def _signed(session="s", **kw):
    data = internal.Internal(account="17785551210", dest="12125550123", session=session,
                             auth_id=kw.get("auth_id", "1778555#4545"))
    return "".join(f"{k}: {v}\r\n" for k, v in internal.sign(SECRET, session, data).items())


def test_headers_from_a_phone_are_stripped_whatever_their_case_or_spacing():
    ksr = _request(("10.0.0.5", 5060), "x-tg-auth-id : 1778555#4545\r\nX-Tg-Account:1\r\n")
    rt = _runtime()
    assert entry.internal_headers(rt) is None
    assert sorted(ksr.removed) == ["X-Tg-Account", "x-tg-auth-id"]
    assert FLT_FROM_IVR not in ksr.flags and rt.req.internal is None


def test_a_valid_signature_from_the_ivr_is_trusted():
    ksr = _request(IVR, _signed())
    rt = _runtime()
    assert entry.internal_headers(rt) is None
    assert FLT_FROM_IVR in ksr.flags
    assert rt.req.internal.auth_id == "1778555#4545"


def test_a_forged_signature_from_the_ivr_address_gets_403():
    forged = _signed().replace("1778555#4545", "1778555#8989")
    ksr = _request(IVR, forged)
    assert entry.internal_headers(_runtime()) == EXIT
    assert ksr.replies == [(403, "Invalid internal signature")]


@pytest.mark.parametrize("source", [("127.0.0.9", 5999), ("10.1.1.1", 5080)])
def test_a_valid_signature_from_elsewhere_is_only_stripped(source):
    ksr = _request(source, _signed())
    assert entry.internal_headers(_runtime()) is None
    assert FLT_FROM_IVR not in ksr.flags and ksr.removed


def test_a_signature_is_good_for_one_invite_whatever_its_call_id():
    signed = _signed()
    ksr = _request(IVR, signed, call_id="first")
    assert entry.internal_headers(_runtime()) is None
    for call_id in ("first", "second"):  # the same request again, or under a new Call-ID
        ksr = _request(IVR, signed, call_id=call_id)
        assert entry.internal_headers(_runtime()) == EXIT
        assert ksr.replies == [(403, "Invalid internal signature")]


def test_duplicate_internal_headers_from_the_ivr_get_403():
    signed = _signed()
    ksr = _request(IVR, signed + "x-tg-auth-id: 1778555#8989\r\n")
    assert entry.internal_headers(_runtime()) == EXIT
    assert ksr.replies == [(403, "Invalid internal signature")]


@pytest.mark.parametrize("headers, line_end", [
    ("Subject: hi\nX-TG-Account: 1\r\n", "\r\n"),      # after a bare LF inside a line
    ("X-TG-Account: 1\r\n", "\n"),                      # after a request line ending in LF
    ("X-TGAccount: 1\r\nx-tg : 2\r\n", "\r\n"),         # any name starting with X-TG
])
def test_internal_headers_behind_odd_line_ends_are_stripped(headers, line_end):
    ksr = _request(("10.0.0.5", 5060), headers, line_end=line_end)
    assert entry.internal_headers(_runtime()) is None
    assert ksr.removed and all(n.lower().startswith("x-tg") for n in ksr.removed)


def test_internal_header_names_are_found_in_any_case_and_only_when_present():
    from kemi import message
    plain = "SIP/2.0 200 OK\r\nVia: a\r\nFrom: <sip:x-tg@h>\r\nContent-Length: 0\r\n\r\n"
    assert message.internal_header_names(plain) == []  # "x-tg" in a value is no header
    forged = plain.replace("Via: a\r\n", "Via: a\r\nx-Tg-Max-Duration: 9\r\nX-TG-Sig: s\r\n")
    assert message.internal_header_names(forged) == ["x-Tg-Max-Duration", "X-TG-Sig"]
    assert message.internal_header_names("INVITE sip:a SIP/2.0\r\nTo: b\r\n\r\n") == []
