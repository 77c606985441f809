"""Signed internal headers: only the holder of the secret can vouch for an auth ID."""
from dataclasses import replace

from billing import internal
from billing.internal import Internal

SECRET = b"s3cret"
DATA = Internal(account="17785551210", dest="12125550123", session="abc@host",
                auth_id="1778555#4545")


def test_signed_headers_verify_and_carry_the_values():
    headers = internal.sign(SECRET, "call-1", DATA, ttl=60, now=1000)
    assert internal.verify(SECRET, "call-1", headers, now=1030) == replace(
        DATA, nonce=headers[internal.NONCE], expires=1060_000)


def test_a_changed_value_breaks_the_signature():
    headers = internal.sign(SECRET, "call-1", DATA, ttl=60, now=1000)
    headers[internal.AUTH_ID] = "1778555#8989"
    assert internal.verify(SECRET, "call-1", headers, now=1000) is None


def test_another_call_id_or_secret_or_expiry_is_refused():
    headers = internal.sign(SECRET, "call-1", DATA, ttl=60, now=1000)
    assert internal.verify(SECRET, "call-2", headers, now=1000) is None
    assert internal.verify(b"other", "call-1", headers, now=1000) is None
    assert internal.verify(SECRET, "call-1", headers, now=1061) is None


def test_missing_signature_is_refused():
    headers = internal.sign(SECRET, "call-1", DATA, now=1000)
    del headers[internal.SIGNATURE]
    assert internal.verify(SECRET, "call-1", headers, now=1000) is None


def test_every_signature_carries_its_own_nonce():
    first = internal.sign(SECRET, "call-1", DATA, ttl=60, now=1000)
    second = internal.sign(SECRET, "call-1", DATA, ttl=60, now=1000)
    assert first[internal.NONCE] != second[internal.NONCE]
    assert first[internal.SIGNATURE] != second[internal.SIGNATURE]


def test_a_changed_nonce_breaks_the_signature():
    headers = internal.sign(SECRET, "call-1", DATA, ttl=60, now=1000)
    headers[internal.NONCE] = "0" * 32
    assert internal.verify(SECRET, "call-1", headers, now=1030) is None
