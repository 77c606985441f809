"""Input checks for provisioning: each returns the clean value or raises BadInput.

Messages are one line and name what is wrong, so the CLI can print them as they are.
"""
from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ACCOUNT_CHARS = re.compile(r"[A-Za-z0-9._+-]")
MAX_ID = 64
CURRENCY = re.compile(r"[A-Z]{3}")
PREFIX = re.compile(r"[0-9]{0,32}")
ACCESS_CODE = re.compile(r"[A-Za-z0-9_.#+%*-]{0,64}")
ACCESS_NUMBER = re.compile(r"[A-Za-z0-9+*#%]{1,64}")
BRAND = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
LANGUAGE = re.compile(r"[a-z]{2}(-[A-Za-z]{2})?")
MONEY_MAX = Decimal("1e13")


class BadInput(ValueError):
    """Operator input that cannot be accepted; the message is shown as it is."""


def _bad_char(kind: str, value: str, allowed: re.Pattern[str], hint: str) -> None:
    for ch in value:
        if not allowed.fullmatch(ch):
            raise BadInput(f"{kind} {value!r}: character {ch!r} is not allowed ({hint})")


def account_id(value: object) -> str:
    """A phone number, SIP ID or card number: [A-Za-z0-9._+-], 1 to 64 characters."""
    text = _text("account ID", value)
    if not text:
        raise BadInput("account ID is empty")
    if len(text) > MAX_ID:
        raise BadInput(f"account ID {text[:20]}...: longer than {MAX_ID} characters")
    _bad_char("account ID", text, ACCOUNT_CHARS, "letters, digits and . _ + - only")
    return text


def alias_id(value: object) -> str:
    """An alias: an account-style ID, optionally followed by #<digits> and/or @<domain>."""
    text = _text("alias", value)
    if not text:
        raise BadInput("alias is empty")
    if len(text) > MAX_ID:
        raise BadInput(f"alias {text[:20]}...: longer than {MAX_ID} characters")
    base, at, domain = text.partition("@")
    if at and not re.fullmatch(r"[A-Za-z0-9.-]+", domain):
        raise BadInput(f"alias {text!r}: '@' must be followed by a name like pstn")
    head, hash_, pin = base.partition("#")
    if hash_ and not pin.isdigit():
        raise BadInput(f"alias {text!r}: '#' must be followed by digits (the PIN)")
    if not head:
        raise BadInput(f"alias {text!r}: nothing before '#' or '@'")
    _bad_char("alias", head, ACCOUNT_CHARS, "letters, digits and . _ + - before # or @")
    return f"{base}@{domain.lower()}" if at else text  # domains compare lower-case


_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
SIP_DOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})+")


def sip_domain(value: object) -> str | None:
    """A client's SIP domain: a DNS name with at least one dot (pbx.example.com), or None."""
    if value is None or value == "":
        return None
    text = _text("SIP domain", value).strip().lower()
    if len(text) > 253 or not SIP_DOMAIN.fullmatch(text):
        raise BadInput(f"SIP domain {text!r} is not a DNS name like pbx.example.com")
    return text


def pin_parts(alias: str) -> tuple[str, str] | None:
    """(associated number, PIN) of a `<assoc>#<pin>` alias, else None."""
    base = alias.partition("@")[0]
    head, hash_, pin = base.partition("#")
    return (head, pin) if hash_ else None


def check_pin_alias(alias: str, associated: str | None, min_len: int, max_len: int) -> None:
    """Refuse a #PIN alias that does not fit its account's associated number or PIN length."""
    parts = pin_parts(alias)
    if parts is None:
        return
    head, pin = parts
    if associated is None:
        raise BadInput(f"alias {alias}: the account has no associated number to match {head}")
    if head != associated:
        raise BadInput(f"alias {alias}: {head} differs from the account's associated number "
                       f"{associated}")
    if not min_len <= len(pin) <= max_len:
        size = str(min_len) if min_len == max_len else f"{min_len} to {max_len}"
        raise BadInput(f"alias {alias}: PIN {pin} has {len(pin)} digits, "
                       f"the voice application wants {size}")


def associated_number(value: object) -> str | None:
    """The associated number (the shared part of an auth ID): digits, or None."""
    if value is None or value == "":
        return None
    text = _text("associated number", value)
    if not re.fullmatch(r"[0-9]{1,32}", text):
        raise BadInput(f"associated number {text!r}: digits only, at most 32")
    return text


def name(kind: str, value: object) -> str:
    """A display name (customer, product, tariff, voice application): 1 to 128 characters."""
    text = _text(f"{kind} name", value).strip()
    if not 1 <= len(text) <= 128:
        raise BadInput(f"{kind} name must have 1 to 128 characters")
    if any(ord(ch) < 32 for ch in text):
        raise BadInput(f"{kind} name {text!r}: control characters are not allowed")
    return text


def currency(value: object) -> str:
    """An ISO 4217 code such as USD."""
    text = _text("currency", value).upper()
    if not CURRENCY.fullmatch(text):
        raise BadInput(f"currency {value!r}: three letters expected (e.g. USD)")
    return text


def money(kind: str, value: object, *, negative: bool = False) -> Decimal:
    """A decimal amount (never float arithmetic), >= 0 unless negative=True."""
    if isinstance(value, bool) or value is None:
        raise BadInput(f"{kind}: a decimal amount is expected")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise BadInput(f"{kind} {value!r} is not a decimal amount") from None
    if not amount.is_finite() or abs(amount) >= MONEY_MAX:
        raise BadInput(f"{kind} {value!r} is out of range")
    if amount != amount.quantize(Decimal("0.00001")):
        raise BadInput(f"{kind} {value!r} has more than 5 decimal places")
    if amount < 0 and not negative:
        raise BadInput(f"{kind} {value!r} is negative")
    return amount


def optional_money(kind: str, value: object) -> Decimal | None:
    """Like money(); None or '' (or 'unlimited') mean no value."""
    if value is None or value == "" or value == "unlimited":
        return None
    return money(kind, value)


def seconds(kind: str, value: object, *, minimum: int = 0) -> int:
    """A whole number of seconds, at least minimum."""
    if isinstance(value, bool):
        raise BadInput(f"{kind}: a whole number of seconds is expected")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise BadInput(f"{kind} {value!r} is not a whole number") from None
    if number < minimum:
        raise BadInput(f"{kind} {number} must be at least {minimum}")
    return number


def whole_number(kind: str, value: object, low: int, high: int) -> int:
    """A whole number from low to high."""
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]{1,9}", str(value).strip()):
        raise BadInput(f"{kind} {value!r}: a whole number from {low} to {high} expected")
    number = int(str(value).strip())
    if not low <= number <= high:
        raise BadInput(f"{kind} {number}: a whole number from {low} to {high} expected")
    return number


def intervals(value: object) -> tuple[int, int]:
    """'60/60' (first/next), '1/1' or '60' (both) -> (first, next), each > 0."""
    text = _text("interval", value)
    first, _, nxt = text.partition("/")
    return (seconds("first interval", first, minimum=1),
            seconds("next interval", nxt or first, minimum=1))


def prefix(value: object) -> str:
    """A destination prefix: digits, up to 32 ('' matches every number)."""
    text = _text("prefix", value)
    if not PREFIX.fullmatch(text):
        raise BadInput(f"prefix {text!r}: digits only, at most 32")
    return text


def access_code(value: object) -> str:
    """A rating entry access code ('' = plain calls, or IN, FIRSTCALL, LEG_A.<dnis> ...)."""
    text = _text("access code", value or "")
    if not ACCESS_CODE.fullmatch(text):
        raise BadInput(f"access code {text!r}: letters, digits and _ . # + % * - only, at most 64")
    return text


def access_number(value: object) -> str:
    """A voice application access number (digits, or a code such as AD%)."""
    text = _text("access number", value)
    if not ACCESS_NUMBER.fullmatch(text):
        raise BadInput(f"access number {text!r}: letters, digits and + * # % only, 1 to 64")
    return text


def brand(value: object) -> str:
    """A brand prompt folder name (one path component: no '/', never '.' or '..')."""
    text = _text("brand prompts", value)
    if not BRAND.fullmatch(text):
        raise BadInput(f"brand prompts {text!r}: a folder name of letters, digits and _ . - "
                       "(not starting with . or -), 1 to 64")
    return text


def branded_access_number(value: object) -> tuple[str, str | None]:
    """An access number with its optional brand: "NUMBER", "NUMBER:BRAND" or a map
    {number, brand_prompts}."""
    if isinstance(value, dict):
        unknown = set(value) - {"number", "brand_prompts"}
        if unknown:
            raise BadInput(f"access number: unknown field {sorted(unknown)[0]!r}")
        folder = value.get("brand_prompts")
        return access_number(value.get("number")), brand(folder) if folder else None
    text = _text("access number", value)
    number, _, folder = text.partition(":")
    return access_number(number), brand(folder) if folder else None


def language(value: object) -> str | None:
    """A language code such as en or pt-BR; None or '' for the default."""
    if value is None or value == "":
        return None
    text = _text("language", value)
    if not LANGUAGE.fullmatch(text):
        raise BadInput(f"language {text!r}: a code such as en or pt-BR expected")
    return text


def timestamp(kind: str, value: object) -> datetime | None:
    """An ISO 8601 time (a date alone means its midnight); None or '' for none."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise BadInput(f"{kind} {value!r} is not an ISO 8601 time") from None


def translation_rule(value: object) -> str:
    """A sed-style rule s/<regex>/<replacement>/<flags> ('' = none), checked by the hot path."""
    text = _text("translation rule", value)
    if not text:
        return text
    try:
        from hotpath import InvalidTranslationRule, validate_rule  # type: ignore[attr-defined]
    except ImportError:
        return _fallback_rule(text)
    try:
        validate_rule(text)
    except InvalidTranslationRule as exc:
        raise BadInput(f"translation rule {text!r}: {exc}") from None
    return text


def _fallback_rule(text: str) -> str:
    """Strict parse of s/<regex>/<repl>/<flags> until hotpath.validate_rule is there."""
    if not text.startswith("s/"):
        raise BadInput(f"translation rule {text!r}: must look like s/<regex>/<replacement>/")
    parts = re.split(r"(?<!\\)/", text[2:])
    if len(parts) != 3:
        raise BadInput(f"translation rule {text!r}: must look like s/<regex>/<replacement>/<flags>")
    pattern, replacement, flags = parts
    if set(flags) - set("gi"):
        raise BadInput(f"translation rule {text!r}: unknown flag in {flags!r} (g and i allowed)")
    try:
        groups = re.compile(pattern.replace("\\/", "/")).groups
    except re.error as exc:
        raise BadInput(f"translation rule {text!r}: bad regular expression: {exc}") from None
    for ref in re.findall(r"\\(\d)", replacement):
        if int(ref) > groups:
            raise BadInput(f"translation rule {text!r}: \\{ref} refers to a missing group")
    return text


def _text(kind: str, value: object) -> str:
    """Strings pass; whole numbers (YAML reads 17785551209 as int) become their digits."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadInput(f"{kind}: text expected, got {value!r}")
    return str(value)


def boolean(kind: str, value: object) -> bool:
    """true/false (also yes/no, on/off, 1/0 from the command line)."""
    if isinstance(value, bool):
        return value
    words = {"true": True, "yes": True, "on": True, "1": True,
             "false": False, "no": False, "off": False, "0": False}
    text = str(value).strip().lower()
    if text not in words:
        raise BadInput(f"{kind} {value!r}: true or false expected")
    return words[text]


def text_list(value: object) -> list[str]:
    """A YAML list or comma-separated text -> list of stripped strings."""
    if isinstance(value, list):
        return [_text("list item", v).strip() for v in value]
    return [part.strip() for part in _text("list", value).split(",") if part.strip()]


def cidr_list(value: object) -> list[str]:
    """Authorized sources: IP addresses or networks (10.0.0.0/8), normalized."""
    import ipaddress

    result = []
    for item in text_list(value):
        try:
            result.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise BadInput(f"authorized source {item!r} is not an IP address or network") from None
    return result


# ISO 3166 country codes, as the system's time zone database lists them (tzdata)
ISO3166 = Path("/usr/share/zoneinfo/iso3166.tab")


@lru_cache(maxsize=1)
def known_countries() -> frozenset[str]:
    """Every ISO 3166 alpha-2 code (empty when the list is not installed)."""
    try:
        lines = ISO3166.read_text(encoding="utf-8").splitlines()
    except OSError:
        return frozenset()
    return frozenset(line.split("\t", 1)[0] for line in lines if line and line[0] != "#")


def countries(value: object) -> list[str]:
    """ISO 3166 two-letter country codes."""
    codes = [c.upper() for c in text_list(value)]
    known = known_countries()
    for code in codes:
        if not re.fullmatch(r"[A-Z]{2}", code):
            raise BadInput(f"country {code!r}: a two-letter code such as US expected")
        if known and code not in known:
            raise BadInput(f"country {code!r} is not an ISO 3166 country code")
    return codes


def subset(kind: str, value: object, allowed: tuple[str, ...]) -> list[str]:
    """A list (or comma-separated text) of words, each one of `allowed`, without repeats."""
    words = text_list(value)
    for word in words:
        if word not in allowed:
            raise BadInput(f"{kind} {word!r}: each one of {', '.join(allowed)}")
    return list(dict.fromkeys(words))


def follow_me(value: object) -> list[str]:
    """Follow-me numbers in the order they ring, each `<number>` or `<number>/<seconds it
    rings>` (5-300, default 20); a YAML item may also be {number: ..., timeout: ...}.
    Stored as `<number>/<seconds>` (billing/forwarding.py reads them)."""
    from billing import forwarding

    items = value if isinstance(value, list) else text_list(value)
    result = []
    for item in items:
        if isinstance(item, dict):
            unknown = set(item) - {"number", "timeout"}
            if unknown or "number" not in item:
                raise BadInput("follow-me entry: {number: ..., timeout: seconds} expected")
            number, ring = _text("follow-me number", item["number"]).strip(), item.get("timeout")
        else:
            number, _, ring = _text("follow-me entry", item).strip().partition("/")
        if not re.fullmatch(r"\+?[0-9]{1,32}", number):
            raise BadInput(f"follow-me number {number!r}: digits with an optional leading + "
                           "expected")
        seconds = forwarding.DEFAULT_RING_S if ring in (None, "") else ring
        if isinstance(seconds, bool) or not re.fullmatch(r"[0-9]{1,3}", str(seconds)) or \
                not forwarding.MIN_RING_S <= int(str(seconds)) <= forwarding.MAX_RING_S:
            raise BadInput(f"follow-me {number}: ring timeout {ring!r} is not "
                           f"{forwarding.MIN_RING_S}-{forwarding.MAX_RING_S} seconds")
        result.append(f"{number}/{int(str(seconds))}")
    if len(result) > 10:
        raise BadInput("follow-me: at most 10 numbers")
    return result


def email(value: object) -> str | None:
    """An e-mail address, or None."""
    if value is None or value == "":
        return None
    text = _text("e-mail", value).strip()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        raise BadInput(f"e-mail {text!r} is not an address")
    return text


def ddi(value: object) -> str | None:
    """An outgoing DDI (caller ID number), or None."""
    if value is None or value == "":
        return None
    text = _text("outgoing DDI", value)
    if not re.fullmatch(r"\+?[0-9]{1,32}", text):
        raise BadInput(f"outgoing DDI {text!r}: digits with an optional leading + expected")
    return text


def service_code(value: object) -> str:
    """A feature code a phone dials: * or # and then up to 7 digits, * or # (*1)."""
    text = _text("service code", value).strip()
    if not re.fullmatch(r"[*#][0-9*#]{1,7}", text):
        raise BadInput(f"service code {text!r}: * or # and 1 to 7 digits, * or # (e.g. *1)")
    return text


def timezone(value: object) -> str:
    """An IANA timezone name (America/Vancouver), as the system's tz database knows it."""
    text = short_text("timezone", value).strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"timezone {text!r} is not a known timezone (e.g. Europe/Madrid)") \
            from None
    return text


def short_text(kind: str, value: object, limit: int = 64) -> str:
    """Free text up to limit characters, no control characters."""
    text = _text(kind, value)
    if len(text) > limit or any(ord(ch) < 32 for ch in text):
        raise BadInput(f"{kind}: at most {limit} printable characters")
    return text


def optional_text(kind: str, value: object, limit: int = 64) -> str | None:
    """short_text, with None or '' meaning none."""
    if value is None or value == "":
        return None
    return short_text(kind, value, limit)


def choice(kind: str, value: object, choices: tuple[str, ...]) -> str:
    """One of a fixed set of words."""
    text = _text(kind, value)
    if text not in choices:
        raise BadInput(f"{kind} {text!r}: one of {', '.join(choices)}")
    return text
