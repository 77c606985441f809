"""The virtual PBX client's policies as routing steps: the source filter, the external
call slots (max calls), the outgoing DDI. The rules are billing/policy.py's; each check
reads the cached customer record, and max calls costs one Redis round trip, only for
clients that set it.
"""
from __future__ import annotations

import KSR
import redis

from billing import policy
from billing.classify import Decision
from kemi import authorize, callvars, log, message
from kemi.constants import AVP_MEDIA_SET
from kemi.runtime import Runtime
from tollgate import keyspace, media
from tollgate.directory import Record

# identity headers a phone may send; an external call carries the one we set, or none
IDENTITY_HEADERS = ("P-Asserted-Identity", "P-Preferred-Identity")
# a watched call's mark outlives its longest authorized length by this much
RECORDING_KEYS_MARGIN_S = 120


def source_refusal(rt: Runtime, customer: Record | None) -> Decision | None:
    """Filter by IP address: an external call from a source the client does not allow."""
    source = message.pv("$si")
    if customer is None or policy.source_allowed(customer, source, rt.country_of):
        return None
    country = rt.country_of(source) or "no country known"
    log.info("POLICY", f"source {source} ({country}) not allowed for client {customer['id']}")
    return policy.SOURCE_REFUSED


def take_slot(rt: Runtime, customer: Record | None, incoming: bool = False) -> Decision | None:
    """One of the client's external call slots for this call, or the refusal when all are
    taken; the dialog's end gives it back (dialogs.on_event)."""
    most = policy.max_calls(customer) if customer is not None else 0
    if not most:
        return None
    assert customer is not None
    if not rt.slots.take(customer["id"], message.pv("$ci"), most,
                         rt.settings.max_call_duration):
        log.info("POLICY", f"client {customer['id']} has its {most} calls already")
        return policy.MAX_CALLS_IN if incoming else policy.MAX_CALLS_OUT
    rt.req.slot = str(customer["id"])  # calls.relay keeps it in the dialog
    return None


def daily_refusal(rt: Runtime, customer: Record | None) -> Decision | None:
    """Max daily usage on a free external call (a paid one is bounded by its reservation):
    refused once the client's spend today has reached the limit; one Redis read, only
    for clients that set a limit. Redis down refuses (503), as for a paid call."""
    if customer is None or customer.get("max_daily_usage") in (None, ""):
        return None
    try:
        reached = rt.reservations.daily_reached(customer)
    except redis.RedisError as exc:
        log.error("POLICY", f"daily usage of client {customer['id']} unreadable: {exc!r}")
        return authorize.UNAVAILABLE
    if not reached:
        return None
    log.info("POLICY", f"client {customer['id']} reached its max daily usage")
    return policy.DAILY_REACHED


def give_back_slot(rt: Runtime, customer_id: str, call_id: str) -> None:
    """The call ended (or was never relayed): its slot is free again."""
    if customer_id:
        rt.slots.give_back(customer_id, call_id)


def use_media_set(rt: Runtime, customer: Record | None) -> bool:
    """The call's media goes through the client's media relay set (its rtpengine
    instances, failing over among them only); False when the client names a set the
    settings do not have (the call is refused rather than anchored elsewhere)."""
    name = customer.get("media_relay_set") if customer is not None else None
    ident = media.set_of(rt.settings, name)
    if ident is None:
        log.error("MEDIA", f"client {customer and customer.get('id')} uses media relay set "
                           f"{name!r}, which the settings (media_relay_sets) do not have")
        return False
    # the rtpengine module reads the set from this AVP (setid_avp) in the request, reply
    # and failure routes of the transaction
    KSR.pv.seti(AVP_MEDIA_SET, ident)
    rt.req.media_set = ident
    return True


def dialog_media_set() -> None:
    """An in-dialog request's media goes where its call's did (the set in the dialog)."""
    ident = callvars.get("media_set")
    KSR.pv.seti(AVP_MEDIA_SET, int(ident) if ident.isdigit() else media.DEFAULT_SET)


def record_on_keys(rt: Runtime) -> None:
    """On-demand recording invoked during the call: a SIP INFO key of the dialog is kept
    (the last eight, in the dialog); when they end with the client's code, rtpengine
    starts recording the call, which the xDR writer files when it ends. Keys come one per
    press; two INFOs sent at once may be handled by two workers and one key lost."""
    if KSR.pv.get("$rm") != "INFO":
        return
    digit = policy.dtmf_digit(message.pv("$cT"), message.pv("$rb"))
    customer_id = callvars.get("customer")
    if not digit or not customer_id.isdigit() or callvars.get("recorded"):
        return
    customer = rt.directory.customer(int(customer_id))
    if not policy.records_on_request(customer, "dtmf"):
        return
    assert customer is not None
    keyed = (callvars.get("dtmf") + digit)[-8:]
    callvars.put({"dtmf": keyed})
    if not policy.keyed_code(customer, keyed):  # never the keys: they may be PINs
        log.info("RECORD", f"a key of the call kept ({len(keyed)} kept)")
        return
    dialog_media_set()
    if KSR.rtpengine.start_recording() > 0:
        callvars.put({"recorded": "1"})
        log.info("RECORD", f"recording the call: client {customer_id} keyed its code")
    else:
        log.error("RECORD", "rtpengine did not start recording")


def watch_keys(rt: Runtime, customer: Record | None) -> bool:
    """A call of a client that starts recording by a code keyed during the call: the
    recording-keys listener is told to watch its RFC 4733 digits (rtpengine reports them
    there, never to us); SIP INFO keys come here (record_on_keys). False when not watched
    (another client, or Redis failed: the call goes on, INFO keys still work)."""
    if not policy.records_on_request(customer, "dtmf"):
        return False
    assert customer is not None
    call_id = message.pv("$ci")
    key = keyspace.recording_keys(call_id)
    ttl = rt.settings.max_call_duration + RECORDING_KEYS_MARGIN_S
    try:
        with rt.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"customer": str(customer["id"]),
                                    "media_set": str(rt.req.media_set),
                                    "from_tag": message.pv("$ft")})
            pipe.expire(key, ttl)
            pipe.execute()
    except redis.RedisError as exc:
        log.error("RECORD", f"keys of the call not watched: {exc!r}")
        return False
    return True


def keys_recorded(rt: Runtime, call_id: str) -> bool:
    """The call's watched keys started its recording (the mark is dropped: the call ended)."""
    key = keyspace.recording_keys(call_id)
    try:
        with rt.redis.pipeline(transaction=True) as pipe:
            pipe.hget(key, "recorded")
            pipe.delete(key)
            recorded, _ = pipe.execute()
    except redis.RedisError as exc:
        KSR.err(f"[{call_id}] RECORD: keyed recording unknown: {exc!r}\n")
        return False
    return bool(recorded)


def present_ddi(account: Record | None, customer: Record | None, domain: str) -> None:
    """The far end sees the client's outgoing DDI (the account's own first): a
    P-Asserted-Identity we set, never one the phone sent."""
    for name in IDENTITY_HEADERS:
        KSR.hdr.remove(name)
    if account is None or customer is None:
        return
    ddi = policy.outgoing_ddi(account, customer)
    if ddi:
        KSR.hdr.append(f"P-Asserted-Identity: <sip:{ddi}@{domain}>\r\n")
