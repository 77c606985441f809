"""Follow-me: a call in from the PSTN gateway to a DID whose answering mode forwards it
rings the account's follow-me numbers through the gateway, in order, each for its ring
timeout (billing/forwarding.py states the rules).

Each number is authorized as an outgoing call of the DID account (its rate, its funds
reserved, one of its client's external call slots), the far end sees the DID, and a
Diversion header names it. The failure route moves on to the next number; the caller
hears the last number's answer when none picks up. The dialog's end bills two legs: the
forwarded one (`out`, the DID account at its rate) and the one that reached the DID (`in`
from the PSTN, or `onnet` from a phone of the platform, paid by its caller).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import KSR

from billing import classify
from billing import forwarding as rules
from billing.classify import Decision
from kemi import authorize, calls, callvars, dialogs, log, message, policy, voicemail
from kemi.constants import (
    ACCESS_INCOMING,
    AVP_FM_ACCOUNT,
    AVP_FM_NEXT,
    EXIT,
    LEG_IN,
    LEG_ONNET,
    LEG_OUT,
    ROUTE_BRANCH_FOLLOW_ME,
    ROUTE_FAILURE,
    ROUTE_ONREPLY,
)
from kemi.runtime import Request, Runtime
from tollgate import metrics
from tollgate.directory import Record

# a branch that ended this way makes way for the next number (the caller's CANCEL does not)
MOVE_ON = "408|480|486|487|500|502|503|504|600|603"
_BRANCH_USER = re.compile(r"sips?:\+?([0-9]{1,32})@")


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
    caller = message.pv("$fU")
    incoming = Incoming(LEG_IN, account["id"], str(account.get("customer_id") or ""),
                        caller if calls.ANI.fullmatch(caller) else "", ACCESS_INCOMING)
    return forward(rt, account, incoming)


def from_phone(rt: Runtime, caller: Record, callee: Record) -> int | None:
    """An on-net call from a phone of the platform to an account that forwards (called by
    calls.from_phone): forwarded as a call in from the PSTN is, the caller's own leg an
    on-net one it pays for as usual; None when the callee does not forward."""
    if not rules.targets(callee):
        return None
    incoming = Incoming(LEG_ONNET, str(caller["id"]), str(caller.get("customer_id") or ""),
                        str(caller["id"]), "")
    return forward(rt, callee, incoming)


@dataclass(frozen=True)
class Incoming:
    """The leg that reached the forwarding account, billed when the call ends: a call in
    from the PSTN (`in`, the DID pays at IN) or an on-net call (`onnet`, its caller)."""
    leg: str
    payer: str
    customer: str
    cli: str
    access_code: str


def forward(rt: Runtime, account: Record, incoming: Incoming) -> int | None:
    """Ring the account's first follow-me number it may call, with its registered phones;
    None (nothing relayed) when it may call none: its phones ring as for any call."""
    KSR.pv.sets(AVP_FM_ACCOUNT, account["id"])
    KSR.pv.seti(AVP_FM_NEXT, 0)
    together = _pick_together(rt, account) if rules.rings_together(account) else None
    one = None if together is not None or rules.rings_together(account) else _pick(rt, account)
    if together is not None:
        target, decision, numbers = together
    elif one is not None:
        (target, decision), numbers = one, [one[0].number]
    else:
        KSR.pv.unset(AVP_FM_ACCOUNT)
        return None
    # the account's registered phones ring with the first number(s), for its timeout
    KSR.pv.sets("$rU", account["id"])
    if KSR.registrar.lookup("location") > 0:
        log.info("FOLLOW-ME", f"{account['id']}'s phones ring with {', '.join(numbers)}")
    else:
        KSR.pv.sets("$ru", rt.gateway_uri(numbers.pop(0)))
    for number in numbers:
        KSR.corex.append_branch_uri(rt.gateway_uri(number))
    _relay(rt, account, target, decision, incoming)
    return EXIT


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
            if next_target(rt, account) or voicemail.on_failure(rt, account["id"]):
                return 1
    elif voicemail.on_failure(rt):  # the phones of ring_then_voicemail did not answer
        return 1
    return calls.on_failure(rt)


def next_target(rt: Runtime, account: Record) -> bool:
    """From the failure route: relay the call to the next follow-me number that may be
    called; False when none is left."""
    picked = _pick(rt, account)
    if picked is None:
        return False
    target, decision = picked
    KSR.pv.sets("$ru", rt.gateway_uri(target.number))
    return _relay(rt, account, target, decision, None)


def _pick(rt: Runtime, account: Record) -> tuple[rules.Target, Decision] | None:
    """The next follow-me number that does not loop and that the account may call, its
    funds or call slot taken; None when none is left."""
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
        if decision is not None:
            metrics.FOLLOW_ME.labels("branch").inc()
            return target, decision
    metrics.FOLLOW_ME.labels("exhausted").inc()
    return None


def _pick_together(rt: Runtime, account: Record) -> tuple[rules.Target, Decision,
                                                          list[str]] | None:
    """Every follow-me number that does not loop and that the account may call, to ring
    at once: one hold for the dearest of them, the call capped at the shortest time any of
    them is authorized for (billing.forwarding.together); None when none is left."""
    plan = rules.targets(account)
    KSR.pv.seti(AVP_FM_NEXT, len(plan))  # nothing is left for the failure route
    call_id = KSR.pv.get("$ci")
    picked = []
    forwarded_from = _forwarded_from()
    for target in plan:
        if rules.loops(target.number, lambda n: _on_net(rt, n), forwarded_from):
            log.info("FOLLOW-ME", f"{target.number} would loop back: skipped")
            metrics.FOLLOW_ME.labels("loop").inc()
            continue
        decision = _authorized(rt, account, target.number)
        if decision is not None:  # measured, not held: one hold is taken for them all
            authorize.release(rt, call_id, account["id"], str(account["customer_id"]))
            picked.append((target, decision))
    if not picked:
        metrics.FOLLOW_ME.labels("exhausted").inc()
        return None
    target, decision = rules.together(picked)
    if decision.paid:
        dearest = max(picked, key=lambda p: p[1].reserve or 0)[0].number
        held = _authorized(rt, account, dearest)
        if held is None:
            return None
        decision = rules.together([(target, held), *picked])[1]
    metrics.FOLLOW_ME.labels("branch").inc(len(picked))
    return target, decision, [t.number for t, _ in picked]


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
           incoming: Incoming | None) -> bool:
    """Ring `target` (the request's branches) for its timeout: the first number through
    calls.relay (media, dialog, billing context), the next ones from the failure route
    (the dialog's context updated). The branch route dresses the gateway's branches."""
    KSR.tm.t_set_fr(target.ring_s * 1000, target.ring_s * 1000)
    KSR.tm.t_on_branch(ROUTE_BRANCH_FOLLOW_ME)
    if incoming is not None:  # the first number: the request route
        calls.relay(rt, decision, LEG_OUT, KSR.pv.get("$ci"), account["id"], target.number,
                    context={"in_leg": incoming.leg, "in_payer": incoming.payer,
                             "in_customer": incoming.customer, "in_cli": incoming.cli,
                             "in_access_code": incoming.access_code, "forwarded": "1"})
        return True
    callvars.put({"cld": target.number, "reserved": decision.reserve or "",
                  "max_duration": decision.max_duration or ""})
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


def dress_branch(rt: Runtime) -> int:
    """The branch route: a branch to the gateway (a follow-me number) presents the DID and
    says where it was forwarded from; a branch to the account's own phone keeps the
    caller's identity."""
    hostport = re.split(r"[;>?]", str(KSR.pv.get("$ru") or "").split("@", 1)[-1])[0]
    if hostport != rt.settings.pstn_gateway:
        return 1
    did, domain = message.pv(AVP_FM_ACCOUNT), rt.settings.sip_domain
    policy.present_ddi(None, None, domain)  # no identity from outside goes on
    KSR.hdr.append(f"P-Asserted-Identity: <sip:{did}@{domain}>\r\n")
    KSR.hdr.append(f"Diversion: <sip:{did}@{domain}>;reason=unconditional\r\n")
    return 1


def on_reply(rt: Runtime) -> int:
    """The reply route: a forwarded call that one of the account's own phones answered is
    a plain call in (no follow-me leg to bill, its funds given back); then calls.on_reply."""
    status = KSR.pv.get("$rs")
    answered = KSR.pv.get("$rm") == "INVITE" and isinstance(status, int) and 200 <= status < 300
    if answered and callvars.get("forwarded") and calls.from_pstn_gateway(rt):
        _answered_number(rt)
    elif answered and callvars.get("forwarded"):
        values = callvars.read()
        authorize.release(rt, KSR.pv.get("$ci"), values["payer"], values["customer"])
        bill_incoming_leg(rt, values)
        log.info("FOLLOW-ME", f"{values['payer']}'s own phone answered: no forwarded leg")
    return calls.on_reply(rt)


def bill_incoming_leg(rt: Runtime, values: dict[str, str]) -> None:
    """The forwarded leg is not the call's (the DID's own phone, or voicemail, took it):
    the dialog bills the leg that reached the account, uncapped by the forwarded leg."""
    fields: dict[str, object] = {"reserved": "", "max_duration": "", "forwarded": ""}
    if values["forwarded"]:
        fields.update({name: value for name, value in dialogs.incoming_leg(values).items()
                       if name in ("leg", "payer", "customer", "cli", "cld", "access_code")})
    callvars.put(fields)
    KSR.dialog.dlg_set_timeout(rt.settings.max_call_duration)


def _answered_number(rt: Runtime) -> None:
    """Of numbers ringing at once, the one that answered is the forwarded leg's CLD (the
    xDR writer rates it)."""
    number = _BRANCH_USER.match(message.pv("$T_branch(uri)"))
    account = rt.directory.account(callvars.get("payer"))
    if number is None or account is None or number.group(1) == callvars.get("cld"):
        return
    if number.group(1) in {t.number for t in rules.targets(account)}:
        callvars.put({"cld": number.group(1)})
        log.info("FOLLOW-ME", f"{number.group(1)} answered")


def _on_net(rt: Runtime, number: str) -> bool:
    """A number of this platform: an account, an alias, or an access number."""
    return rt.directory.identity(number) is not None or \
        rt.directory.access_number(number) is not None


def _forwarded_from() -> set[str]:
    """The numbers this call was forwarded from already (every Diversion header)."""
    return rules.diverted_from(message.pv("$(hdr(Diversion)[*])"))
