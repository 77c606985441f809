"""Trust decisions on SIP requests reaching the IVR and on the toll leg it sends.

Plain functions over text, so the rules run in unit tests without pjsua2.
"""
from __future__ import annotations

from urllib.parse import quote

from billing import internal

# canonical spelling of each internal header, keyed by its lower-case name
_CANONICAL = {h.lower(): h for h in internal.SIGNED + (internal.SIGNATURE,)}


def parse_headers(message: str) -> dict[str, str]:
    """Header name -> value of a raw SIP message; the first occurrence wins.

    X-TG-* names are returned in their canonical spelling, others in lower case.
    Folded continuation lines are joined.
    """
    head = message.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines: list[str] = []
    for line in head.split("\n")[1:]:
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        headers.setdefault(_CANONICAL.get(key, key), value.strip())
    return headers


def info_answer(message: str) -> tuple[int, str, int | None] | None:
    """(code, reason, X-TG-Max-Duration) of a final reply to an INFO, None for anything
    else (a provisional reply, a request, a reply to another method)."""
    status = message.split("\n", 1)[0].rstrip("\r")
    parts = status.split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        return None
    code = int(parts[1])
    headers = parse_headers(message)
    if code < 200 or headers.get("cseq", "").split()[-1:] != ["INFO"]:
        return None
    value = headers.get(internal.MAX_DURATION.lower(), "")
    text = parts[2][:100] if len(parts) > 2 else ""
    reason = "".join(c if c.isprintable() else "?" for c in text)
    return code, reason, int(value) if value.isdigit() and len(value) < 10 else None


def host_of(address: str) -> str:
    """The host part of "1.2.3.4:5060" or "[::1]:5060"."""
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def verify_invite(secret: bytes, kamailio_host: str, source: str, call_id: str,
                  message: str) -> internal.Internal | None:
    """The signed values of an INVITE when it comes from Kamailio and its signature holds."""
    if host_of(source) != kamailio_host:
        return None
    data = internal.verify(secret, call_id, parse_headers(message))
    # a phone's call names its account; a call to an access number may come from the
    # PSTN (no account, the ANI instead) but always names its application
    if data is None or not data.dest or not (data.account or data.app):
        return None
    return data


def toll_headers(secret: bytes, caller: internal.Internal, auth_id: str,
                 ttl: int) -> dict[str, str]:
    """Signed headers of the toll leg the IVR sends back to Kamailio.

    pjsua picks the Call-ID of an outgoing INVITE only while sending it, so this hop is
    signed over the session ID (the Call-ID of the caller's leg) in the Call-ID slot;
    Kamailio verifies with internal.verify(secret, <X-TG-Session value>, headers).
    """
    data = internal.Internal(account=caller.account, dest=caller.dest, session=caller.session,
                             auth_id=auth_id, app=caller.app)
    return internal.sign(secret, caller.session, data, ttl=ttl)


def toll_uri(dest: str, host: str, port: int) -> str:
    """sip:<dest>@host:port with the number escaped for the user part."""
    return f"sip:{quote(dest, safe='+*-_.!~()')}@{host}:{port}"


def toll_from(account: str, host: str) -> str:
    """From of the toll leg: the calling account, as the phone's own INVITE had it."""
    return f"sip:{quote(account, safe='+*-_.!~()')}@{host}"
