"""First steps of every request: sanity, floods, in-dialog traffic, internal headers."""
from __future__ import annotations

import math
import time

import KSR

from billing import internal
from kemi import log
from kemi.constants import EXIT, FLT_FROM_IVR, REASON_BANNED
from kemi.runtime import Runtime
from tollgate import metrics


def reqinit(rt: Runtime) -> int | None:
    """Per-request checks: hop count, malformed SIP, banned or flooding sources."""
    rt.req = {}
    rt.directory.poll()
    rt.export_cache_stats()
    source = KSR.pv.get("$si")
    if source not in rt.trusted:
        if KSR.htable.sht_get("ipban", source) is not None:
            return EXIT  # banned: drop silently, an attacker learns nothing
        if KSR.pike.pike_check_req() < 0:
            log.warn("REQINIT", f"flood from {source}, banned")
            KSR.htable.sht_seti("ipban", source, 1)
            metrics.REFUSALS.labels("drop", REASON_BANNED).inc()
            return EXIT
    if KSR.maxfwd.process_maxfwd(10) < 0:
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        return EXIT
    if KSR.sanity.sanity_check(17895, 7) < 0:
        log.warn("REQINIT", f"malformed request from {source}")
        return EXIT  # sanity already answered 400 where a reply is possible
    return None


def cancel(rt: Runtime) -> int | None:
    """CANCEL of a transaction we know goes the way of its INVITE."""
    if not KSR.is_CANCEL():
        return None
    if KSR.tm.t_check_trans() > 0:
        KSR.rtpengine.rtpengine_delete0()
        KSR.tm.t_relay()
    return EXIT


def within_dialog(rt: Runtime) -> int | None:
    """Requests inside an established dialog follow its Record-Route."""
    if KSR.siputils.has_totag() < 0:
        return None
    if KSR.rr.loose_route() > 0:
        if not KSR.is_BYE():  # a BYE ends the dialog: its timer is already gone
            keep_hard_cap()
        if KSR.is_BYE() or KSR.is_INVITE() or KSR.is_ACK():
            KSR.rtpengine.rtpengine_manage0()
        if KSR.is_INVITE():
            KSR.tm.t_on_reply("ksr_onreply_manage")
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return EXIT
    if KSR.is_ACK():
        if KSR.tm.t_check_trans() > 0:
            KSR.tm.t_relay()
        return EXIT
    KSR.sl.sl_send_reply(404, "Not here")
    return EXIT


def keep_hard_cap() -> None:
    """An in-dialog request re-arms the dialog timeout: re-arm it to what is left of the
    call's authorized maximum, so re-INVITEs or keepalives never extend a paid call."""
    cap, connected = KSR.pv.get("$dlg_var(max_duration)"), KSR.pv.get("$dlg_var(connect_ts)")
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
    """X-TG-* headers count only from the IVR with a valid signature; stripped from all."""
    names = _internal_header_names(KSR.pv.get("$mb") or "")
    if not names:
        return None
    values = {}
    for name in set(names):
        canonical = _canonical(name)
        if canonical:
            values[canonical] = KSR.pv.get(f"$hdr({name})") or ""
        KSR.hdr.remove(name)
    if not rt.from_ivr(KSR.pv.get("$si"), KSR.pv.get("$sp")):
        log.warn("INTERNAL", f"stripped {len(names)} internal headers from {KSR.pv.get('$si')}")
        return None
    # the IVR cannot choose its legs' Call-IDs, so its signature binds the session ID
    verified = internal.verify(rt.secret, values.get(internal.SESSION, ""), values)
    if verified is None or _replayed(values[internal.SIGNATURE]):
        log.warn("INTERNAL", "bad, expired or replayed signature from the IVR address")
        metrics.REFUSALS.labels("403", "Invalid internal signature").inc()
        KSR.sl.sl_send_reply(403, "Invalid internal signature")
        return EXIT
    rt.req["internal"] = verified
    KSR.setflag(FLT_FROM_IVR)
    return None


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


def _replayed(signature: str) -> bool:
    """A signature is good for one call: a second Call-ID carrying it is a replay."""
    call_id = KSR.pv.get("$ci")
    seen = KSR.htable.sht_get("ivrsig", signature)
    if seen is None:
        KSR.htable.sht_sets("ivrsig", signature, call_id)
        return False
    return seen != call_id


_CANON = {h.lower(): h for h in internal.SIGNED + (internal.SIGNATURE,)}


def _canonical(name: str) -> str:
    return _CANON.get(name.strip().lower(), "")


def _internal_header_names(raw: str) -> list[str]:
    """Names of every header whose name starts with X-TG-, whatever its case or spacing."""
    head = raw.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
    names = []
    for line in head:
        if not line or line[0] in " \t" or ":" not in line:
            continue  # folded continuation lines carry no name
        name = line.split(":", 1)[0].strip()
        if name.lower().startswith(internal.PREFIX.lower()):
            names.append(name)
    return names
