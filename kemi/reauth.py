"""Dynamic reauthorization: the IVR asks, inside a prepaid card's connected call, whether
the card may now talk longer (a top-up, a concurrent call ended); Kamailio holds again
what the whole call may cost and moves the dialog's hard cap.

The request is an in-dialog INFO from the IVR carrying X-TG-Reauth and the signed
internal headers of the call (payer, destination, access code), signed over the call's
own Call-ID with a fresh nonce. It is answered here, never relayed.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

import KSR

from billing import internal, money
from kemi import authorize, calls, callvars, log, message
from kemi.constants import EXIT
from kemi.runtime import Runtime

REAUTH = "X-TG-Reauth"
RERATE = "X-TG-Rerate"   # a call-back's leg A is rated under the signed access code from now


def asked(rt: Runtime) -> int | None:
    """Answer a reauthorization (or re-rating) INFO of the IVR; None for any other
    in-dialog request."""
    from kemi.entry import first_use  # entry routes in-dialog requests here
    if not KSR.is_method("INFO"):
        return None
    rerate = bool(message.pv(f"$hdr({RERATE})"))
    if not rerate and not message.pv(f"$hdr({REAUTH})"):
        return None
    if not rt.from_ivr(KSR.pv.get("$si"), KSR.pv.get("$sp")):
        return _answer(403, "Forbidden")
    names = internal.SIGNED + (internal.SIGNATURE,)
    values = {name: message.pv(f"$hdr({name})") for name in names}
    signed = internal.verify(rt.secret, message.pv("$ci"), values)
    if signed is None or not first_use(rt, signed):
        return _answer(403, "Invalid internal signature")
    payer, cld = callvars.get("payer"), callvars.get("cld")
    if signed.auth_id != payer or signed.dest != cld:
        return _answer(403, "Not this call")
    if rerate:  # "Special charge if LegB fails": leg A under CALLBACK_FAIL, or back
        return _rerate(rt, payer, cld, signed.access_code)
    return _extend(rt, payer, cld, callvars.get("access_code"))


def _rerate(rt: Runtime, payer_id: str, cld: str, access_code: str) -> int:
    """Rate the call under `access_code` from its start, holding again what it may cost
    at that rate: a dearer rate shortens the cap to what the funds cover. A rate the
    funds cannot cover for the seconds already talked is refused (409), and the call
    keeps its rate and its hold: re-rating must never bill more than was held."""
    cap, connected = callvars.get("max_duration"), callvars.get("connect_ts")
    old_code = callvars.get("access_code")
    payer = rt.directory.account(payer_id)
    if payer is None:
        return _answer(409, "Nothing to rerate")
    decision = calls.decide(rt, payer, cld, from_ivr=True, access_code=access_code)
    if not decision.ok:
        return _answer(409, f"Not rated under {access_code or 'plain'}")
    if decision.paid and cap.isdigit() and connected:
        before = int(callvars.get("cap_before") or 0)
        granted = authorize.reserve(rt, decision, message.pv("$ci"), cap=int(cap) + before)
        elapsed = time.time() - float(connected)
        longest = money.rerated_cap(granted.max_duration if granted.ok else None, before,
                                    elapsed)
        if longest is None:
            _hold_again(rt, payer, cld, old_code, int(cap) + before)
            return _answer(409, "Funds do not cover the new rate")
        KSR.dialog.dlg_set_timeout(max(1, int(longest - elapsed)))
        callvars.put({"max_duration": longest, "reserved": granted.reserve or ""})
        log.info("RERATE", f"payer {payer_id}: cap {cap} -> {longest} s")
    callvars.put({"access_code": access_code})
    log.info("RERATE", f"payer {payer_id}: {cld} rated under {access_code or 'plain'}")
    return _answer(200, "Rerated")


def _hold_again(rt: Runtime, payer: Mapping[str, object], cld: str, access_code: str,
                cap: int) -> None:
    """The call's hold under its own rate again, after a refused re-rate replaced it."""
    decision = calls.decide(rt, payer, cld, from_ivr=True, access_code=access_code)
    if decision.ok and decision.paid:
        granted = authorize.reserve(rt, decision, message.pv("$ci"), cap=cap)
        if granted.ok:
            callvars.put({"reserved": granted.reserve or ""})


def _extend(rt: Runtime, payer_id: str, cld: str, access_code: str) -> int:
    """Hold again what the call may cost from its start; a longer cap moves the timer."""
    cap, connected = callvars.get("max_duration"), callvars.get("connect_ts")
    payer = rt.directory.account(payer_id)
    if not cap.isdigit() or not connected or payer is None:
        return _answer(409, "Nothing to reauthorize")
    decision = calls.decide(rt, payer, cld, from_ivr=True, access_code=access_code)
    if not decision.ok or not decision.paid:
        return _answer(200, "Unchanged", cap)
    granted = authorize.reserve(rt, decision, message.pv("$ci"))
    if not granted.ok or granted.max_duration is None:
        return _answer(200, "Unchanged", cap)  # a refused hold leaves the one it had
    before = int(callvars.get("cap_before") or 0)
    longest = max(int(cap), granted.max_duration - before)
    granted = replace(granted, max_duration=longest)
    elapsed = time.time() - float(connected)
    KSR.dialog.dlg_set_timeout(max(1, int(longest - elapsed)))
    callvars.put({"max_duration": longest, "reserved": granted.reserve or ""})
    log.info("REAUTH", f"payer {payer_id}: cap {cap} -> {longest} s")
    return _answer(200, "Reauthorized", str(longest))


def _answer(code: int, reason: str, cap: str = "") -> int:
    if cap:
        KSR.hdr.append_to_reply(f"{internal.MAX_DURATION}: {cap}\r\n")
    if code >= 300:
        log.warn("REAUTH", f"{code} {reason} from {KSR.pv.get('$si')}")
    KSR.sl.sl_send_reply(code, reason)
    return EXIT
