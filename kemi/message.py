"""Reading a SIP message that may hold any byte: every KEMI read of message text goes here.

app_python3 hands pseudo-variables to Python as str and raises UnicodeDecodeError on a
byte sequence that is not UTF-8 (a \\xff in a display name, a Latin-1 SDP line). A request
route refuses such a request once, up front (`readable`); replies and dialog events, which
cannot be refused, read through `pv`, which never raises.
"""
from __future__ import annotations

import re

import KSR

from billing import internal

# a line ends at LF (Kamailio's parser and pjsip both take a bare LF as a line end; pjsip
# also takes a bare CR, Kamailio does not: a bare CR is refused so both read one message)
_LINE_END = re.compile(r"\r?\n")


def pv(name: str, default: str = "") -> str:
    """A pseudo-variable's text, or `default` when it is unset or not UTF-8."""
    try:
        value = KSR.pv.get(name)
    except UnicodeDecodeError:
        return default
    return default if value is None else str(value)


def raw() -> str | None:
    """The whole message as text; None when it is not UTF-8."""
    try:
        return KSR.pv.get("$mb") or ""
    except UnicodeDecodeError:
        return None


def header_lines(message: str) -> list[str]:
    """The header lines of a message as Kamailio's parser splits them (the request or
    status line left out); folded continuation lines stay separate, starting with SP/HT."""
    head = re.split(r"\r?\n\r?\n", message, maxsplit=1)[0]
    return _LINE_END.split(head)[1:]


def has_bare_cr(message: str) -> bool:
    """True when a CR in the header part is not followed by LF."""
    head = re.split(r"\r?\n\r?\n", message, maxsplit=1)[0]
    return "\r" in _LINE_END.sub("", head)


def header_names(message: str) -> list[str]:
    """The name of every header line, as written (case and spacing kept, trimmed)."""
    names = []
    for line in header_lines(message):
        if not line or line[0] in " \t" or ":" not in line:
            continue  # folded continuation lines carry no name
        names.append(line.split(":", 1)[0].strip())
    return names


_VIA_SENT_BY = re.compile(r"SIP\s*/\s*2\.0\s*/\s*[A-Za-z]+\s+(\[[^\]]*\]|[^\s;:,]+)", re.I)
_RECEIVED = re.compile(r";\s*received\s*=\s*(\[[^\]]*\]|[^\s;,]+)", re.I)


def via_hosts(message: str) -> list[str]:
    """The host each Via names, in order (its received= when it has one, IPv6 without
    brackets); one Via header line may hold several, comma-separated."""
    hosts = []
    for line in header_lines(message):
        name, colon, value = line.partition(":")
        if not colon or name.strip().lower() not in ("via", "v"):
            continue
        for via in value.split(","):
            sent_by, received = _VIA_SENT_BY.search(via), _RECEIVED.search(via)
            host = received or sent_by
            if host:
                hosts.append(host.group(1).strip("[]"))
    return hosts


_URI_HOST = re.compile(r"^\s*<?\s*[A-Za-z][A-Za-z0-9+.-]*:(?:[^@<>;?\s]*@)?(\[[^\]]*\]|[^\s;:?>]+)")


def uri_host(uri: str) -> str:
    """The host a SIP URI names ("" when it names none), IPv6 without brackets;
    `<sip:user@host:port;params>` and bare `sip:host` alike."""
    found = _URI_HOST.match(uri)
    return found.group(1).strip("[]").lower() if found else ""


def internal_header_names(message: str) -> list[str]:
    """Every header name that starts with X-TG, in any case, as written (repeats kept);
    no parsing when the text cannot hold one (the common case, on every reply)."""
    if internal.PREFIX_MATCH not in message.lower():
        return []
    return [n for n in header_names(message) if n.lower().startswith(internal.PREFIX_MATCH)]


def strip_internal(message: str) -> None:
    """Remove every X-TG header from the message being routed (request or reply)."""
    for name in set(internal_header_names(message)):
        KSR.hdr.remove(name)
