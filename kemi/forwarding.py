"""Follow-me: a call in from the PSTN gateway to a DID whose answering mode forwards it
rings the account's follow-me numbers through the gateway, in order, each for its ring
timeout (billing/forwarding.py states the rules).

Each number is authorized as an outgoing call of the DID account (its rate, its funds
reserved, one of its client's external call slots), the far end sees the DID, and a
Diversion header names it. The failure route moves on to the next number; the caller
hears the last number's answer when none picks up. The dialog's end bills two legs: the
forwarded one (`out`, the DID account at its rate) and the incoming one (`in`).
"""
from __future__ import annotations

import KSR

from billing import classify
from billing import forwarding as rules
from billing.classify import Decision
from kemi import authorize, calls, log, message, policy
from kemi.constants import (
    AVP_FM_ACCOUNT,
    AVP_FM_NEXT,
    EXIT,
    LEG_OUT,
    ROUTE_FAILURE,
    ROUTE_ONREPLY,
    dlg_var,
)
from kemi.runtime import Request, Runtime
from tollgate import metrics
from tollgate.directory import Record

# a branch that ended this way makes way for the next number (the caller's CANCEL does not)
MOVE_ON = "408|480|486|487|500|502|503|504|600|603"


def follow_me(rt: Runtime) -> int | None:
    """A call in from the gateway to an account that forwards: its first reachable number."""
    if not calls.from_pstn_gateway(rt):
        return None
    account = rt.directory.account(KSR.pv.get("$rU") or "")
    if account is None or not rules.targets(account):
        return None  # calls.from_gateway: an access number, the account's phones, or 404
    if account["id"] in _forwarded_from():
        metrics.FOLLOW_ME.labels("loop").inc()
        return calls.refuse(rules.LOOP)
    KSR.pv.sets(AVP_FM_ACCOUNT, account["id"])
    KSR.pv.seti(AVP_FM_NEXT, 0)
    KSR.hdr.append(f"Diversion: <sip:{account['id']}@{rt.settings.sip_domain}>"
                   ";reason=unconditional\r\n")
    if next_target(rt, account, first=True):
        return EXIT
    return calls.refuse(rules.NO_TARGET)


def on_failure(rt: Runtime) -> int:
    """The failure route: a follow-me number that did not answer makes way for the next;
    anything else is calls.on_failure's."""
    account_id = KSR.pv.get(AVP_FM_ACCOUNT)
    if isinstance(account_id, str) and account_id and KSR.tm.t_is_canceled() < 0 \
            and KSR.tm.t_check_status(MOVE_ON) > 0:
        rt.req = Request()  # this worker's last request route was another message's
        account = rt.directory.account(account_id)
        status = KSR.pv.get("$T_reply_code")
        if account is not None:
            log.info("FOLLOW-ME", f"{KSR.pv.get('$ru')} answered {status}: next number")
            authorize.release(rt, KSR.pv.get("$ci"), account["id"],
                              str(account.get("customer_id")))
            if next_target(rt, account, first=False):
                return 1
    return calls.on_failure(rt)


def next_target(rt: Runtime, account: Record, first: bool) -> bool:
    """Relay the call to the next follow-me number that may be called; False when none."""
    plan = rules.targets(account)
    index = KSR.pv.get(AVP_FM_NEXT)
    index = index if isinstance(index, int) else len(plan)
    forwarded_from = _forwarded_from()
    while index < len(plan):
        target, index = plan[index], index + 1
        KSR.pv.seti(AVP_FM_NEXT, index)
        if rules.loops(target.number, lambda n: _on_net(rt, n), forwarded_from):
            log.info("FOLLOW-ME", f"{target.number} would loop back: skipped")
            metrics.FOLLOW_ME.labels("loop").inc()
            continue
        decision = _authorized(rt, account, target.number)
        if decision is None:
            continue
        metrics.FOLLOW_ME.labels("branch").inc()
        return _relay(rt, account, target, decision, first)
    metrics.FOLLOW_ME.labels("exhausted").inc()
    return False


def _authorized(rt: Runtime, account: Record, number: str) -> Decision | None:
    """The DID account's outgoing call to `number`, with its funds or slot taken; None
    (logged) when it may not be made."""
    # the platform forwards: the account's own call-via-IVR (auth code) does not apply
    decision = calls.decide(rt, account, number, from_ivr=True)
    if decision.ok and decision.route != classify.PSTN:
        decision = Decision(403, "Not a PSTN number")
    customer = rt.directory.customer(account["customer_id"])
    if decision.ok and decision.paid:
        decision = authorize.reserve(rt, decision, KSR.pv.get("$ci"), slot=True)
    elif decision.ok:
        refusal = policy.take_slot(rt, customer) or policy.daily_refusal(rt, customer)
        if refusal is not None:
            calls.give_back_slot(rt)
        decision = refusal or decision
    if decision.ok:
        return decision
    log.info("FOLLOW-ME", f"{number} not called: {decision.code} {decision.reason}")
    metrics.FOLLOW_ME.labels("refused").inc()
    return None


def _relay(rt: Runtime, account: Record, target: rules.Target, decision: Decision,
           first: bool) -> bool:
    """Ring `target` for its timeout: the first number through calls.relay (media, dialog,
    billing context), the next ones from the failure route (the dialog's context updated)."""
    KSR.pv.sets("$ru", rt.gateway_uri(target.number))
    KSR.tm.t_set_fr(target.ring_s * 1000, target.ring_s * 1000)
    if first:
        caller = message.pv("$fU")
        policy.present_ddi(None, None, rt.settings.sip_domain)  # no identity from outside
        KSR.hdr.append(f"P-Asserted-Identity: <sip:{account['id']}@{rt.settings.sip_domain}>\r\n")
        calls.relay(rt, decision, LEG_OUT, KSR.pv.get("$ci"), account["id"],
                    target.number)
        KSR.pv.sets(dlg_var("in_cli"), caller if calls.ANI.fullmatch(caller) else "")
        KSR.pv.sets(dlg_var("forwarded"), "1")
        return True
    for name, value in (("cld", target.number), ("reserved", decision.reserve or ""),
                        ("max_duration", decision.max_duration or "")):
        KSR.pv.sets(dlg_var(name), "" if value is None else str(value))
    if decision.max_duration:
        KSR.dialog.dlg_set_timeout(int(decision.max_duration))
    KSR.tm.t_on_reply(ROUTE_ONREPLY)
    KSR.tm.t_on_failure(ROUTE_FAILURE)
    if KSR.tm.t_relay() < 0:
        authorize.release(rt, KSR.pv.get("$ci"), account["id"], str(account["customer_id"]))
        return False
    metrics.CALLS.labels(LEG_OUT).inc()
    log.info("RELAY", f"follow-me {account['id']} -> {target.number} "
                      f"(max {decision.max_duration})")
    return True


def _on_net(rt: Runtime, number: str) -> bool:
    """A number of this platform: an account, an alias, or an access number."""
    return rt.directory.identity(number) is not None or \
        rt.directory.access_number(number) is not None


def _forwarded_from() -> set[str]:
    """The numbers this call was forwarded from already (every Diversion header)."""
    return rules.diverted_from(message.pv("$(hdr(Diversion)[*])"))
