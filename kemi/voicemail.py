"""Voicemail routing (second-number-service.txt): who reaches a mailbox, and when a call
nobody answers goes to voicemail. The IVR runs both applications (ivr/apps/voicemail.py),
named in the signed X-TG-App; Kamailio alone decides which.

- The owner calling their own number from the mobile its @pstn alias names reaches the
  mailbox, never follow-me; their own phones reach it with the *98 service code.
- A call in to an account whose answering mode ends in voicemail: "voicemail" goes there
  at once; "ring_then_voicemail" rings the phones for RING_S, "forward_then_voicemail"
  the follow-me numbers; whatever is not answered (or has nothing to ring) leaves a
  message. The caller's leg is billed as the call in it is (IN from the PSTN, free unless
  the product rates it; on-net, its caller); an unanswered follow-me leg gets its own
  failed xDR.
- The IVR's message-waiting NOTIFY (signed) is forked to the account's registered phones.
"""
from __future__ import annotations

import KSR

from billing import classify, internal
from billing.classify import Decision
from kemi import calls, callvars, dialogs, log, message
from kemi.constants import (
    ACCESS_INCOMING,
    AVP_FM_ACCOUNT,
    AVP_VM_ACCOUNT,
    EXIT,
    FLT_FROM_IVR,
    LEG_IN,
    ROUTE_FAILURE,
    ROUTE_ONREPLY,
)
from kemi.runtime import Runtime
from tollgate import metrics
from tollgate.directory import Record

# answering modes that end in voicemail
VOICEMAIL_MODES = frozenset({"voicemail", "ring_then_voicemail", "forward_then_voicemail"})
SERVICE_CODE = "*98"        # a phone of the account dials it for its mailbox
PSTN_ALIAS = "{ani}@pstn"   # the alias that names a mobile as the account's own
RING_S = 20                 # ring_then_voicemail: how long the phones ring first
DEPOSIT_APP, ACCESS_APP = internal.APP_VOICEMAIL_DEPOSIT, internal.APP_VOICEMAIL_ACCESS
PHONE_APP = internal.APP_VOICEMAIL_PHONE
# a branch that ended this way goes to voicemail (the caller's CANCEL does not)
NO_ANSWER = "408|480|486|487|600|603"


def message_waiting(rt: Runtime) -> int | None:
    """The IVR's signed NOTIFY (message-summary): forked to the account's phones."""
    if not KSR.is_method("NOTIFY") or not KSR.isflagset(FLT_FROM_IVR):
        return None
    signed = rt.req.internal
    if signed is None or signed.app != internal.APP_MWI \
            or rt.directory.account(signed.account) is None:
        KSR.sl.sl_send_reply(403, "Forbidden")
        return EXIT
    KSR.pv.sets("$rU", signed.account)
    if KSR.registrar.lookup("location") < 0:
        KSR.sl.sl_send_reply(404, "Not Registered")
        return EXIT
    metrics.MWI.inc()
    log.info("MWI", f"message summary to {signed.account}'s phones")
    if KSR.tm.t_relay() < 0:
        KSR.sl.sl_reply_error()
    return EXIT


def mailbox_by_ani(rt: Runtime) -> int | None:
    """A call in from the gateway whose ANI is an @pstn alias of the account it dials:
    the owner calling their own number reaches their mailbox."""
    if not calls.from_pstn_gateway(rt):
        return None
    ani = message.pv("$fU")
    owner = rt.directory.account(KSR.pv.get("$rU") or "")
    if owner is None or not calls.ANI.fullmatch(ani):
        return None
    identity = rt.directory.identity(PSTN_ALIAS.format(ani=ani))
    if identity is None or identity.account["id"] != owner["id"]:
        return None
    log.info("VOICEMAIL", f"{ani} is {owner['id']}'s own mobile: its mailbox")
    decision = Decision(200, "Voicemail access", classify.IVR, payer=owner["id"],
                        customer_id=owner.get("customer_id"))
    return _to_ivr(rt, owner, ACCESS_APP, ani, decision, LEG_IN, ani)


def service_code(rt: Runtime, caller: Record, dialed: str) -> int | None:
    """From calls.from_phone: *98 is the caller's own mailbox (no password: the phone
    authenticated). Not billed."""
    if dialed != SERVICE_CODE:
        return None
    log.info("VOICEMAIL", f"{caller['id']} dials its mailbox")
    return _to_ivr(rt, caller, PHONE_APP, str(caller["id"]),
                   Decision(200, "Voicemail access", classify.IVR), LEG_IN, str(caller["id"]))


def to_registered(rt: Runtime, callee: Record, decision: Decision, leg: str) -> int | None:
    """From calls.to_registered, for an account whose answering mode ends in voicemail:
    straight to voicemail (mode "voicemail", or no phone registered); else None and the
    phones ring, for RING_S when the mode is ring_then_voicemail (then voicemail)."""
    mode = callee.get("answering_mode")
    if mode not in VOICEMAIL_MODES:
        return None
    if mode != "voicemail":
        KSR.pv.sets("$rU", callee["id"])
        if KSR.registrar.lookup("location") > 0:
            KSR.pv.sets(AVP_VM_ACCOUNT, callee["id"])
            KSR.tm.t_set_fr(0, RING_S * 1000)
            return None
    return deposit(rt, callee, decision, leg)


def deposit(rt: Runtime, owner: Record, decision: Decision, leg: str) -> int:
    """A new call in goes to `owner`'s voicemail, billed as the call in it is."""
    cli = message.pv("$fU")
    return _to_ivr(rt, owner, DEPOSIT_APP, cli if calls.ANI.fullmatch(cli) else "",
                   decision, leg, cli)


def _to_ivr(rt: Runtime, owner: Record, app: str, ani: str, decision: Decision, leg: str,
            cli: str) -> int:
    session = KSR.pv.get("$ci")
    calls.send_to_ivr(rt, rt.directory.customer(owner["customer_id"]), str(owner["id"]),
                      str(owner["id"]), session, app=app, ani=ani)
    metrics.VOICEMAIL_CALLS.labels(app).inc()
    return calls.relay(rt, decision, leg, session, cli, str(owner["id"]),
                       access_code=ACCESS_INCOMING if leg == LEG_IN else "")


def wanted(account: Record) -> bool:
    """Calls to `account` nobody answers go to its voicemail."""
    return account.get("answering_mode") in VOICEMAIL_MODES


def on_failure(rt: Runtime, account_id: str = "") -> bool:
    """From the failure route: an unanswered call of an account with voicemail goes
    there (the phones or the last follow-me number did not answer); True when relayed."""
    account_id = account_id or message.pv(AVP_VM_ACCOUNT)
    if not account_id or KSR.tm.t_is_canceled() > 0 or KSR.tm.t_check_status(NO_ANSWER) < 0:
        return False
    owner = rt.directory.account(account_id)
    if owner is None or not wanted(owner):
        return False
    KSR.pv.unset(AVP_VM_ACCOUNT)
    KSR.pv.unset(AVP_FM_ACCOUNT)  # the IVR's own failure is the IVR's (next worker)
    values = callvars.read()
    if values["forwarded"]:  # the follow-me leg failed: its own xDR, then the call in's
        code = KSR.pv.get("$T_reply_code")
        dialogs.emit_failed(rt, KSR.pv.get("$ci"), values, code if isinstance(code, int)
                            else 408, message.pv("$T_reply_reason") or "No answer")
    from kemi import forwarding  # it builds on this module's steps
    forwarding.bill_incoming_leg(rt, values)
    cli = callvars.get("cli")
    calls.send_to_ivr(rt, rt.directory.customer(owner["customer_id"]), str(owner["id"]),
                      str(owner["id"]), KSR.pv.get("$ci"), app=DEPOSIT_APP,
                      ani=cli if calls.ANI.fullmatch(cli) else "")
    metrics.VOICEMAIL_CALLS.labels(DEPOSIT_APP).inc()
    log.info("VOICEMAIL", f"no answer: {owner['id']}'s voicemail")
    KSR.tm.t_on_reply(ROUTE_ONREPLY)
    KSR.tm.t_on_failure(ROUTE_FAILURE)
    return bool(KSR.tm.t_relay() > 0)
