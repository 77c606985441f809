"""First steps of every request: sanity, floods, in-dialog traffic, internal headers."""
from __future__ import annotations

import math
import time

import KSR

from billing import internal
from kemi import calls, callvars, log, message, policy, reauth
from kemi.constants import (
    DLG_ANSWERED,
    EXIT,
    FLT_FROM_IVR,
    HT_IPBAN,
    REASON_BANNED,
    REASON_NO_DIALOG,
    REASON_SIGNATURE,
    ROUTE_ONREPLY,
)
from kemi.runtime import Request, Runtime
from tollgate import keyspace, metrics

MAX_FORWARDS = 10          # hops a request may still take when it reaches us
SANITY_MSG_CHECKS = 17895  # the sanity module's checks of Kamailio's default cfg (Via too)
SANITY_URI_CHECKS = 7      # Request-URI, From and To URIs parse
SANITY_REPLY_CHECKS = 17604     # the reply checks of Kamailio's KEMI example (Via, CSeq, ...)
SANITY_REPLY_URI_CHECKS = 6     # From and To URIs parse
NONCE_MARGIN_S = 5         # a used nonce is remembered this long past its signature


def reqinit(rt: Runtime) -> int | None:
    """Per-request checks: hop count, malformed SIP, banned or flooding sources."""
    rt.req = Request()
    rt.directory.poll()
    rt.export_cache_stats()
    source = KSR.pv.get("$si")
    if source not in rt.trusted:
        if KSR.htable.sht_get(HT_IPBAN, source) is not None:
            return EXIT  # banned: drop silently, an attacker learns nothing
        if KSR.pike.pike_check_req() < 0:
            log.warn("REQINIT", f"flood from {source}, banned")
            KSR.htable.sht_seti(HT_IPBAN, source, 1)
            metrics.REFUSALS.labels("drop", REASON_BANNED).inc()
            return EXIT
    if KSR.maxfwd.process_maxfwd(MAX_FORWARDS) < 0:
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        return EXIT
    if KSR.sanity.sanity_check(SANITY_MSG_CHECKS, SANITY_URI_CHECKS) < 0:
        log.warn("REQINIT", f"malformed request from {source}")
        return EXIT  # sanity already answered 400 where a reply is possible
    return None


def readable(rt: Runtime) -> int | None:
    """Every later step reads the message as text: one that is not UTF-8, or that ends a
    header line with a bare CR (which pjsip and Kamailio would split differently), is
    refused here, before anything reads it."""
    text = message.raw()
    if text is None:
        return bad_request("Invalid UTF-8")
    if message.has_bare_cr(text):
        return bad_request("Bare CR in header")
    rt.req.text = text
    return None


def bad_request(reason: str) -> int:
    """400 with a reason (an ACK gets nothing), counted and logged."""
    log.warn("REQINIT", f"{reason} from {KSR.pv.get('$si')}")
    metrics.REFUSALS.labels("400", reason).inc()
    if not KSR.is_ACK():
        KSR.sl.sl_send_reply(400, reason)
    return EXIT


def cancel(rt: Runtime) -> int | None:
    """CANCEL of a transaction we know goes the way of its INVITE (whose failure route
    frees the media, in the call's own rtpengine set)."""
    if not KSR.is_CANCEL():
        return None
    if KSR.tm.t_check_trans() > 0:
        KSR.tm.t_relay()
    return EXIT


def within_dialog(rt: Runtime) -> int | None:
    """Requests inside a dialog follow its Record-Route, and only inside a dialog this
    proxy made: a forged To-tag and Route must never reach the gateway (a free call) or
    anywhere else (an open relay)."""
    if KSR.siputils.has_totag() < 0:
        return None
    if KSR.rr.loose_route() > 0:
        if KSR.dialog.is_known_dlg() < 0:
            if KSR.is_ACK() and stateful_ack():
                return EXIT  # the ACK of a refusal relayed through a transaction of ours
            return unknown_dialog("no dialog of ours")
        if reauth.asked(rt) == EXIT:
            return EXIT
        strip_internal(rt)
        policy.record_on_keys(rt)
        if not KSR.is_BYE():  # a BYE ends the dialog: its timer is already gone
            keep_hard_cap()
        if KSR.is_BYE() or KSR.is_INVITE() or KSR.is_ACK():
            policy.dialog_media_set()
            KSR.rtpengine.rtpengine_manage0()
        if KSR.is_INVITE():
            KSR.tm.t_on_reply(ROUTE_ONREPLY)
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return EXIT
    if KSR.is_ACK():
        stateful_ack()
        return EXIT
    return unknown_dialog("no Route to us")


def stateful_ack() -> bool:
    """An ACK of a transaction we hold (the caller's ACK of a non-2xx reply): tm absorbs
    it (t_check_trans returns 0) or it goes on hop by hop; False when no transaction."""
    found = int(KSR.tm.t_check_trans())
    if found > 0:
        KSR.tm.t_relay()
    return found >= 0


def strip_internal(rt: Runtime) -> None:
    """In-dialog requests carry no internal header past us, whoever sent them."""
    message.strip_internal(rt.req.text)


def unknown_dialog(why: str) -> int:
    """481 for an in-dialog request we cannot place (an ACK is dropped), never relayed."""
    log.warn("DIALOG", f"refused in-dialog {KSR.pv.get('$rm')} from {KSR.pv.get('$si')}: {why}")
    metrics.REFUSALS.labels("481", REASON_NO_DIALOG).inc()
    if not KSR.is_ACK():
        KSR.sl.sl_send_reply(481, REASON_NO_DIALOG)
    return EXIT


def reply_of_ours(rt: Runtime) -> int:
    """A reply that matches no transaction of ours is dropped: forwarded statelessly to its
    second Via, anyone could make the proxy send UDP wherever they like."""
    if KSR.sanity.sanity_check(SANITY_REPLY_CHECKS, SANITY_REPLY_URI_CHECKS) < 0:
        why = "malformed"
    elif KSR.tm.t_check_trans() > 0:
        return 1
    elif calls.late_answer(rt):
        return 1  # relayed statelessly to the caller, as tm relayed the first
    else:
        why = "stray"
    log.warn("REPLY", f"dropped a {why} {message.pv('$rs')} from {KSR.pv.get('$si')}")
    metrics.REFUSALS.labels("drop", f"{why.capitalize()} reply").inc()
    KSR.set_drop()
    return EXIT


def keep_hard_cap() -> None:
    """An in-dialog request re-arms the dialog timeout: re-arm it to what is left of the
    call's authorized maximum, so re-INVITEs or keepalives never extend a paid call."""
    if KSR.pv.get("$dlg(state)") not in DLG_ANSWERED:
        return  # a late ACK of a dialog already ended: nothing to re-arm
    cap, connected = callvars.get("max_duration"), callvars.get("connect_ts")
    if not cap or not connected:
        return
    left = float(connected) + int(cap) - time.time()
    KSR.dialog.dlg_set_timeout(max(1, math.ceil(left)))


def retransmission(rt: Runtime) -> int | None:
    """Retransmissions are absorbed by the transaction layer."""
    if KSR.tmx.t_precheck_trans() > 0:
        KSR.tm.t_check_trans()
        return EXIT
    if KSR.tm.t_check_trans() == 0:
        return EXIT
    return None


def internal_headers(rt: Runtime) -> int | None:
    """X-TG* headers count only from the IVR with a valid, unused signature; every header
    whose name starts with X-TG, in any case or spacing, is stripped from every request."""
    names = message.internal_header_names(rt.req.text)
    if not names:
        return None
    distinct = {n.lower(): n for n in names}
    values = {}
    for lower, name in distinct.items():
        canonical = _CANON.get(lower)
        if canonical:
            values[canonical] = message.pv(f"$hdr({canonical})")
        KSR.hdr.remove(name)  # every header of that name, whatever its case
    if not rt.from_ivr(KSR.pv.get("$si"), KSR.pv.get("$sp")) and not (
            # the IVR's message-waiting NOTIFYs leave from a socket of their own
            KSR.pv.get("$rm") == "NOTIFY" and KSR.pv.get("$si") == rt.settings.ivr_address):
        log.warn("INTERNAL", f"stripped {len(names)} internal headers from {KSR.pv.get('$si')}")
        return None
    if len(distinct) != len(names):
        return refuse_internal("duplicate internal header")
    verified = internal.verify(rt.secret, values.get(internal.SESSION, ""), values)
    if verified is None:
        return refuse_internal("bad or expired signature")
    if not first_use(rt, verified):
        return refuse_internal(f"signature replayed (nonce {verified.nonce})")
    rt.req.internal = verified
    KSR.setflag(FLT_FROM_IVR)
    return None


def first_use(rt: Runtime, signed: internal.Internal) -> bool:
    """A signature is good for one INVITE: its nonce is marked used in Redis (shared by
    every worker and node) until it expires; a second INVITE carrying it is a replay."""
    if not signed.nonce:
        return False
    ttl_ms = max(1000, int(signed.expires + NONCE_MARGIN_S * 1000 - time.time() * 1000))
    return bool(rt.redis.set(keyspace.signature_used(signed.nonce), 1, nx=True, px=ttl_ms))


def refuse_internal(why: str) -> int:
    """403 for internal headers from the IVR address that cannot be trusted."""
    log.warn("INTERNAL", f"{why} from the IVR address")
    metrics.REFUSALS.labels("403", REASON_SIGNATURE).inc()
    KSR.sl.sl_send_reply(403, REASON_SIGNATURE)
    return EXIT


def options(rt: Runtime) -> int | None:
    """OPTIONS addressed to us (no user part) is a keepalive: 200 from the KEMI script."""
    if KSR.is_OPTIONS() and not KSR.pv.get("$rU"):
        KSR.hdr.append_to_reply("X-Tollgate-Route: kemi\r\n")
        KSR.sl.sl_send_reply(200, "OK")
        return EXIT
    return None


def only_invite(rt: Runtime) -> int | None:
    """Beyond registration we route calls only; other methods get a precise answer."""
    if KSR.is_INVITE():
        return None
    if KSR.is_ACK():
        return EXIT  # a stray ACK has nobody to answer
    KSR.sl.sl_send_reply(405, "Method Not Allowed")
    return EXIT


_CANON = {h.lower(): h for h in internal.SIGNED + (internal.SIGNATURE,)}
