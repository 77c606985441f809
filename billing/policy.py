"""A virtual PBX client's call policies (virtual-pbx-client.txt), decided from the cached
customer and account records: who may call out from where, what number the far end sees,
how many external calls a client may have at once.

Pure: kemi/policy.py carries the decisions out; the one counter (calls in progress) is
taken atomically in Redis by tollgate/slots.py running billing/slots.lua.
"""
from __future__ import annotations

import ipaddress
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

from billing import money, profiles
from billing.classify import Decision

# refusals, with the locution a client with voice notifications hears
SOURCE_REFUSED = Decision(403, "No permission to place this call")
MAX_CALLS_OUT = Decision(*money.MAX_CALLS)
MAX_CALLS_IN = Decision(486, money.MAX_CALLS[1])
DAILY_REACHED = Decision(*money.DAILY_REACHED)
# the refusals of an outgoing call a client with voice notifications hears explained
# (virtual-pbx-client.txt: "you have no permissions to place this call", "the call cannot
# be billed", ...), by reason phrase; the locutions are prompts of ivr/prompts.py
NOTIFICATIONS = {SOURCE_REFUSED.reason: "no_permission",
                 "Forbidden destination": "no_permission",
                 "Account blocked": "no_permission",
                 "Account expired": "no_permission",
                 "Customer blocked": "no_permission",
                 MAX_CALLS_OUT.reason: "max_calls_reached",
                 DAILY_REACHED.reason: "max_daily_usage_reached",
                 profiles.CANNOT_BILL[1]: "cannot_bill",
                 "No rating for destination": "cannot_bill",
                 money.INSUFFICIENT[1]: "insufficient_funds",
                 "Unknown number": "not_found"}

# the country of an address, or "" (unknown); tollgate/geoip.py in production
CountryOf = Callable[[str], str]


@lru_cache(maxsize=4096)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None  # a bad entry authorizes nobody


def in_sources(address: str, sources: Iterable[str]) -> bool:
    """True when `address` lies in one of the CIDR ranges."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for cidr in sources:
        network = _network(str(cidr))
        if network is not None and ip.version == network.version and ip in network:
            return True
    return False


def source_allowed(customer: Mapping[str, Any], address: str,
                   country_of: CountryOf | None = None) -> bool:
    """Filter by IP address: off, or the source is an authorized source, or its GeoIP
    country is allowed. With the filter on and both lists empty nothing may call out."""
    if not customer.get("ip_filter"):
        return True
    if in_sources(address, customer.get("authorized_sources") or ()):
        return True
    countries = customer.get("allowed_countries") or ()
    return bool(countries) and country_of is not None and country_of(address) in countries


def friends(caller: Mapping[str, Any], callee: Mapping[str, Any]) -> bool:
    """May the caller's client call the callee client's extensions? Inside one client,
    and between two clients of one corporation (inter-VPBX friends)."""
    if caller.get("id") == callee.get("id"):
        return True
    corporation = caller.get("corporation")
    return bool(corporation) and corporation == callee.get("corporation")


def outgoing_ddi(account: Mapping[str, Any], customer: Mapping[str, Any]) -> str:
    """The number the far end sees on an external call: the account's own outgoing DDI,
    else the client's, else "" (the caller's own number stays)."""
    return str(account.get("outgoing_ddi") or customer.get("outgoing_ddi") or "")


def max_calls(customer: Mapping[str, Any]) -> int:
    """Concurrent external calls the client may have (0: unlimited)."""
    value = customer.get("max_calls") or 0
    return int(value) if isinstance(value, int) and value > 0 else 0


def notification(decision: Decision, customer: Mapping[str, Any] | None) -> str:
    """The locution a refused caller of this client hears before the refusal ("" when the
    client has voice notifications off, or not among its features, or the refusal has
    none)."""
    if customer is None or decision.ok or not has_feature(customer, VOICE_NOTIFICATIONS):
        return ""
    if not customer.get("voice_notifications"):
        return ""
    return NOTIFICATIONS.get(decision.reason, "")


# --- features and billing method --------------------------------------------------------

BILLING, VOICE_NOTIFICATIONS, RECORDING = "billing", "voice_notifications", "recording"
FEATURES = (BILLING, VOICE_NOTIFICATIONS, RECORDING)
# the client fields each feature governs: hidden (and without effect) while it is off
FEATURE_FIELDS = {BILLING: ("billing_method", "rating_profiles"),
                  VOICE_NOTIFICATIONS: ("voice_notifications",),
                  RECORDING: ("recording", "on_demand_recording", "recording_service_code",
                              "allow_recording_removal")}
BILLING_METHODS = ("postpaid", "none")


def has_feature(customer: Mapping[str, Any], feature: str) -> bool:
    """True when the feature is among the client's (a record without the list: all)."""
    features = customer.get("features")
    return features is None or feature in features


def priced(customer: Mapping[str, Any] | None) -> bool:
    """Are the client's calls priced? Not when billing is not among its features or its
    billing method is 'none': calls are still rated (a destination nobody rates, or a
    forbidden one, is refused) but hold and cost nothing."""
    if customer is None:
        return True
    return has_feature(customer, BILLING) and customer.get("billing_method") != "none"


# --- distribute method over the application servers (IVR workers) ----------------------

DISTRIBUTE_METHODS = ("hash", "round_robin", "static")


def first_server(customer: Mapping[str, Any] | None, session: str, servers: int,
                 turn: int) -> int:
    """The application server a call of this client tries first (the next ones take it
    when that one fails): 'hash' keeps every call of a client on one server, 'round_robin'
    takes them in turn (`turn`: a running count), 'static' its application server. A call
    of no known client (an access number from the PSTN) is spread by its session."""
    if customer is None or customer.get("id") is None:
        return zlib.crc32(session.encode()) % servers
    method, server = customer.get("distribute_method"), customer.get("application_server")
    if method == "static" and isinstance(server, int):
        return server % servers
    if method == "round_robin":
        return turn % servers
    return zlib.crc32(str(customer["id"]).encode()) % servers


# --- on-demand recording ------------------------------------------------------------------

RECORDING_INVOCATIONS = ("disabled", "service_code", "dtmf")
_SIGNAL = re.compile(r"^\s*Signal\s*=\s*([0-9*#A-Da-d])\s*$", re.M | re.I)


def records_on_request(customer: Mapping[str, Any] | None, invocation: str) -> bool:
    """Does the client record calls on request, invoked this way?"""
    return (customer is not None and has_feature(customer, RECORDING)
            and bool(customer.get("recording"))
            and customer.get("on_demand_recording") == invocation)


def dtmf_digit(content_type: str, body: str) -> str:
    """The key of a SIP INFO carrying DTMF (application/dtmf-relay "Signal=5", or
    application/dtmf "5"); "" for any other INFO."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/dtmf-relay":
        found = _SIGNAL.search(body)
        return found.group(1).upper() if found else ""
    if kind == "application/dtmf":
        text = body.strip()
        return text.upper() if re.fullmatch(r"[0-9*#A-Da-d]", text) else ""
    return ""


def keyed_code(customer: Mapping[str, Any], keyed: str) -> bool:
    """Have the keys pressed in a call so far ended with the client's recording code?"""
    code = str(customer.get("recording_service_code") or "")
    return bool(code) and keyed.endswith(code)


def recorded_number(customer: Mapping[str, Any] | None, dialed: str) -> str:
    """The number a call asks to be recorded to: `dialed` without the client's recording
    service code ("*1" + 12125550123), when the client has the recording feature, has
    recording on and invokes it by service code; "" for any other call."""
    if not records_on_request(customer, "service_code"):
        return ""
    assert customer is not None
    code = str(customer.get("recording_service_code") or "")
    if code and dialed.startswith(code) and len(dialed) > len(code):
        return dialed[len(code):]
    return ""
