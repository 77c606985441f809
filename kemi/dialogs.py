"""Dialog events become xDR events; the timer process replays what was spooled."""
from __future__ import annotations

import time
from decimal import Decimal

import KSR
import msgpack
import redis

from billing.xdr import XdrError, XdrEvent
from kemi import authorize, callvars, cluster, message, policy
from kemi.constants import LEG_IN, ROUTE_TIMEOUT
from kemi.runtime import Runtime
from tollgate import keyspace, metrics

START, END, FAILED = "dialog:start", "dialog:end", "dialog:failed"
# a capped call reaching its authorized maximum: its xDR leaves before the BYEs do, as
# Kamailio 5.6.3 can lose the dialog (and its end event) when a side answers the BYE fast;
# the dialog:end that usually follows repeats the event and the writer keeps one
TIMEOUT = ROUTE_TIMEOUT
# a call ended by a BYE this close to its authorized maximum ended at the cap
CAP_MARGIN_S = 2


def on_event(rt: Runtime, event: str) -> int:
    """dialog:start counts a call; end and failed emit its xDR event; a capped call's
    timeout emits it, then hangs up both sides whatever happened before (the dialog
    module sends these dialogs no BYE of its own: kamailio.cfg send_bye)."""
    if event != TIMEOUT:
        return _on_event(rt, event)
    try:
        return _on_event(rt, event)
    finally:
        bye_both_sides(message.pv("$dlg(callid)"))


def _on_event(rt: Runtime, event: str) -> int:
    if event == START:
        metrics.ACTIVE_CALLS.inc()
        return 1
    if event not in (END, FAILED, TIMEOUT):
        return 1
    if event == END:
        metrics.ACTIVE_CALLS.dec()
    values = callvars.read()
    if not values["payer"]:
        return 1  # a leg Kamailio does not bill: a call to an access number (the IVR does)
    if not values["connect_ts"] and event != FAILED:
        values["connect_ts"] = cluster.answered_at(rt, values["setup_ts"])  # set up elsewhere
        if values["connect_ts"] and event == END:
            cluster.hang_up(rt)
    # the dialog's own Call-ID: in a timeout or a locally generated failure, $ci reads
    # the message Kamailio fakes for the event ("123")
    call_id = message.pv("$dlg(callid)")
    if not call_id:
        KSR.err(f"[{message.pv('$ci')}] DIALOG: {event} without a dialog Call-ID\n")
        return 1
    if values["slot"]:  # the client's external call slot is free again
        policy.give_back_slot(rt, values["slot"], call_id)
    if event == TIMEOUT:
        code, reason = 200, _timeout_reason(values)
    elif event == END:
        code, reason = 200, _end_reason(values)
    else:
        code, reason = _failure(values)
        if values["reserved"]:
            authorize.release(rt, call_id, values["payer"], values["customer"])
    _emit(rt, call_id, values, code, reason, answered=event != FAILED)
    if values["forwarded"]:  # forwarded to a follow-me number: the leg that reached it
        _emit(rt, call_id, incoming_leg(values), code, reason, answered=event != FAILED)
    keyed = bool(values["keys_watched"]) and policy.keys_recorded(rt, call_id)
    if (values["recorded"] or keyed) and event != FAILED:
        _recorded(rt, call_id, values)
    return 1


def bye_both_sides(call_id: str) -> None:
    """At the cap both sides get their BYE here, the far end (the gateway of a toll leg)
    first; the dialog module sends none of its own. Kamailio 5.6.3 refuses a dialog's
    second BYE once the first one's 200 has ended it: a side that answers fast (the IVR
    of a prepaid or call-back leg) left the other side up, the gateway leg talking and
    paid to the carrier after its xDR. A side so refused gets a BYE built from the
    dialog's record instead."""
    ends = cluster.dialog_ends()   # before any BYE: a fast 200 can free the dialog
    for side, to_callee in (("callee", True), ("caller", False)):
        if KSR.dialog.dlg_bye(side) < 0:
            sent = cluster.direct_bye(ends, to_callee)
            outcome = f"sent straight to {sent}" if sent else \
                "not sent: no contact" if sent is None else "not sent: tm refused it"
            KSR.info(f"[{call_id}] DIALOG: {side} BYE at the cap {outcome}\n")


def _recorded(rt: Runtime, call_id: str, values: dict[str, str]) -> None:
    """A recorded call ended: the xDR writer files rtpengine's capture as its recording
    (a second end event of the call files nothing twice)."""
    job = {"call_id": call_id, "customer_id": values["customer"], "account": values["payer"],
           "cli": values["cli"], "cld": values["cld"], "setup_ts": values["setup_ts"]}
    try:
        rt.redis.rpush(keyspace.RECORDINGS, msgpack.packb(job))
    except redis.RedisError as exc:  # the capture stays in rtpengine's spool, unfiled
        KSR.err(f"[{call_id}] RECORD: not queued for filing: {exc!r}\n")


def incoming_leg(values: dict[str, str]) -> dict[str, str]:
    """The leg that reached a forwarded account (kemi/forwarding.py): from the PSTN, the
    caller to the DID at the incoming access code (free unless the DID's product rates
    IN), as a call in that rings the account's phones is; from a phone of the platform,
    its on-net call, paid by that caller."""
    return {**values, "leg": values["in_leg"] or LEG_IN,
            "payer": values["in_payer"] or values["payer"],
            "customer": values["in_customer"] or values["customer"],
            "cli": values["in_cli"], "cld": values["payer"],
            "access_code": values["in_access_code"], "max_duration": ""}


def mark_connected() -> None:
    """Called on the 2xx to an INVITE: the billed time starts now."""
    if not callvars.get("connect_ts"):
        callvars.put({"connect_ts": f"{time.time():.3f}"})


def housekeeping(rt: Runtime) -> int:
    """Replay spooled xDR events once Redis answers again."""
    try:
        sent = rt.emitter.replay()
    except (OSError, redis.RedisError):
        return 1  # Redis still down: the spool stays for the next tick
    if sent:
        metrics.XDR_EVENTS.labels("replayed").inc(sent)
        KSR.info(f"[-] HOUSEKEEPING: replayed {sent} spooled xDR events\n")
    return 1


def _timeout_reason(values: dict[str, str]) -> str:
    """The dialog timer fires at the hard cap, and also when the no-ACK clean-up ends an
    unacknowledged call: tell them apart by the time the call was authorized for."""
    cap, connected = values["max_duration"], values["connect_ts"]
    if cap and connected and time.time() + 1 >= float(connected) + int(cap):
        return "Authorized maximum reached"
    return "Dialog timed out"


def _end_reason(values: dict[str, str]) -> str:
    """A BYE within a moment of the cap is the cap: the IVR ends its outgoing calls just
    before Kamailio's timer would (ivr.server CAP_MARGIN_S)."""
    cap, connected = values["max_duration"], values["connect_ts"]
    if cap and connected and time.time() + CAP_MARGIN_S >= float(connected) + int(cap):
        return "Authorized maximum reached"
    return "Normal clearing"


def remember_final_reply(code: int, reason: str) -> None:
    """The failure route stores what the caller is answered: the dialog's failed event
    may run on a message Kamailio fakes, which knows neither."""
    callvars.put({"final_code": code, "final_reason": reason})


def _failure(values: dict[str, str]) -> tuple[int, str]:
    """Code and reason the caller got: the failure route's record, else the reply's."""
    code = values.get("final_code", "")
    if code.isdigit() and int(code) >= 300:
        return int(code), values.get("final_reason") or "Call failed"
    status = KSR.pv.get("$rs")
    if isinstance(status, int) and status >= 300:
        return status, message.pv("$rr") or "Call failed"
    return 487, "Request Terminated"


def emit_failed(rt: Runtime, call_id: str, values: dict[str, str], code: int,
                reason: str) -> None:
    """The xDR of a leg that failed while the call goes on elsewhere (an unanswered
    follow-me number before voicemail)."""
    _emit(rt, call_id, values, code, reason, answered=False)


def _emit(rt: Runtime, call_id: str, values: dict[str, str], code: int, reason: str,
          answered: bool) -> None:
    now = Decimal(f"{time.time():.3f}")
    setup = Decimal(values["setup_ts"] or now)
    connect = Decimal(values["connect_ts"]) if answered and values["connect_ts"] else Decimal(0)
    end = max(now, setup)
    if connect and values["max_duration"]:
        # the authorized maximum is the most that is billed: the BYE the dialog timer
        # sends lands a moment after it, and must not cost the payer another interval
        end = min(end, connect + int(values["max_duration"]))
    try:
        event = XdrEvent(call_id=call_id, session_id=values["session"] or call_id,
                         leg=values["leg"], account=values["payer"],
                         customer_id=int(values["customer"] or 0), cli=values["cli"],
                         cld=values["cld"], access_code=values["access_code"],
                         setup_ts=setup, connect_ts=connect, end_ts=end,
                         sip_code=code, reason=reason,
                         node=f"{rt.settings.node_name or 'kamailio'}:{rt.pid}")
    except (XdrError, ValueError) as exc:
        KSR.err(f"[{call_id}] XDR: cannot build event: {exc}\n")
        return
    sink = "redis" if rt.emitter.emit(event.encode()) else "spool"
    metrics.XDR_EVENTS.labels(sink).inc()
