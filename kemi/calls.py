"""INVITE routing: identify the caller, classify by rating, authorize, relay with media.

The decisions are billing.classify / billing.money values; this module only reads
SIP fields and carries the decision out.
"""
from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import datetime, timezone

import KSR

from billing import classify, internal, profiles
from billing import policy as rules
from billing.classify import Decision
from billing.rating import RateError
from kemi import authorize, callvars, dialogs, log, message, policy, registrar
from kemi.constants import (
    ACCESS_INCOMING,
    AVP_IVR_ACCOUNT,
    AVP_IVR_ANI,
    AVP_IVR_APP,
    AVP_IVR_FIRST,
    AVP_IVR_NOTIFY,
    AVP_IVR_SESSION,
    AVP_IVR_TRIES,
    AVP_IVR_USER,
    DLG_ANSWERED,
    EXIT,
    FLT_FROM_IVR,
    LEG_IN,
    LEG_IVR,
    LEG_ONNET,
    LEG_OUT,
    LEG_TOLL,
    REASON_IVR_DOWN,
    REASON_IVR_FULL,
    ROUTE_BRANCH_IVR,
    ROUTE_FAILURE,
    ROUTE_ONREPLY,
    ROUTE_TIMEOUT,
)
from kemi.runtime import Runtime
from tollgate import metrics
from tollgate.directory import Record

# voice applications the IVR runs behind an access number
ACCESS_NUMBER_APPS = ("prepaid", "voicemail", "balance_info", "voucher_topup",
                      "balance_transfer", "callback")
# an ANI worth looking up: a number, at most 32 digits (anything else is anonymous)
ANI = re.compile(r"\+?[0-9]{1,32}")

# rtpengine 10.5 passes audio straight through but re-times RFC 4733 event packets by their
# RTP timestamp; a sender whose timestamps run ahead of the wall clock (pjsip phones gain
# 40 ms a digit) gets its later digits sent after newer audio, and receivers drop them as
# out of order (sipwise/rtpengine#1638, fixed upstream in mr11.4). inject-DTMF sends all
# media through rtpengine's codec engine, which keeps audio and events in one ordered stream.
ANSWER_RESENT_FOR = 32  # s a callee resends its 2xx without an ACK (64*T1, RFC 6026)
MEDIA_FLAGS = "replace-origin replace-session-connection inject-DTMF"


def from_ivr(rt: Runtime) -> int | None:
    """The toll leg the IVR originates: the auth ID names the payer; a prepaid card's leg
    is rated by the access code the IVR chose and cut "Disconnect call before" early."""
    if not KSR.isflagset(FLT_FROM_IVR):
        return None
    signed = rt.req.internal
    assert signed is not None, "FLT_FROM_IVR is set only with verified values"
    caller = rt.directory.account(signed.account)
    payer_identity = rt.directory.identity(signed.auth_id) if signed.auth_id else None
    if caller is None or payer_identity is None:
        return refuse(Decision(404, "Unknown auth ID"))
    payer = payer_identity.account
    if payer.get("customer_id") != caller.get("customer_id"):
        return refuse(Decision(403, "Auth ID of another customer"))
    app = rt.directory.app(signed.app) if signed.app else None
    settings = (app or {}).get("settings") or {}
    log.info("IVR-LEG", f"auth ID {signed.auth_id} -> payer {payer['id']} for {signed.dest}"
                        f" (access code {signed.access_code or '-'})")
    decision = decide(rt, payer, signed.dest, from_ivr=True, access_code=signed.access_code)
    if not decision.ok:
        return refuse(decision)
    return toll_out(rt, decision, signed.dest, LEG_TOLL, signed.session,
                    cli=signed.ani or caller["id"], access_code=signed.access_code,
                    before=int(settings.get("disconnect_call_before") or 0),
                    presenter=None if signed.ani else caller,
                    cap=int(signed.cap) if signed.cap.isdigit() else 0)


def from_pstn_gateway(rt: Runtime) -> bool:
    """True when the request comes from the PSTN gateway's address and port."""
    host, _, port = rt.settings.pstn_gateway.partition(":")
    return bool(KSR.pv.get("$si") == host and KSR.pv.get("$sp") == int(port))


def from_gateway(rt: Runtime) -> int | None:
    """Calls from the PSTN gateway reach an access number's application or the dialed
    account's registered phones (a forwarding account: kemi/forwarding.py, before this)."""
    if not from_pstn_gateway(rt):
        return None
    dialed = KSR.pv.get("$rU") or ""
    app = rt.directory.access_number(dialed)
    if app is not None:
        ani = message.pv("$fU")
        return to_access_number(rt, app, dialed, "", ani if ANI.fullmatch(ani) else "")
    callee = rt.directory.dialed_account(dialed)
    if callee is None:
        return refuse(Decision(404, "Unknown number"))
    return to_registered(rt, callee, Decision(200, "Inbound", "onnet", payer=callee["id"],
                                              customer_id=callee.get("customer_id")), LEG_IN)


def from_phone(rt: Runtime) -> int | None:
    """A phone's call: authenticate, then on-net, toll-free, via the IVR, or paid out."""
    identity = registrar.authenticate(rt)
    if identity is None:
        return EXIT
    caller = identity.account
    dialed = KSR.pv.get("$rU") or ""
    app = rt.directory.access_number(dialed)
    if app is not None:
        return to_access_number(rt, app, dialed, str(caller["id"]), str(caller["id"]))
    from kemi import voicemail  # it builds on this module's steps
    mailbox = voicemail.service_code(rt, caller, dialed)
    if mailbox is not None:
        return mailbox
    customer = rt.directory.customer(caller["customer_id"])
    recorded = rules.recorded_number(customer, dialed)
    if recorded:  # "*1" + number: the client's on-demand recording service code
        KSR.pv.sets("$rU", recorded)
        dialed, rt.req.record = recorded, True
    if customer is not None:
        extension = to_extension(rt, caller, customer, dialed)
        if extension is not None:
            return extension
    decision = decide(rt, caller, dialed)
    if not decision.ok:
        return refuse(decision, rt, caller, customer)
    if decision.route in (classify.PSTN, classify.IVR):  # an external call
        refusal = policy.source_refusal(rt, customer)
        if refusal is not None:
            return refuse(refusal, rt, caller, customer)
    session = KSR.pv.get("$ci")
    if decision.route == classify.ONNET:
        callee = rt.directory.account(dialed)
        from kemi import forwarding  # it builds on this module's steps
        if callee is not None and forwarding.from_phone(rt, caller, callee) == EXIT:
            return EXIT
        return to_registered(rt, callee, decision, LEG_ONNET)
    if decision.route == classify.IVR:
        return to_ivr(rt, caller, dialed, session)
    return toll_out(rt, decision, dialed, LEG_OUT, session, cli=caller["id"], presenter=caller)


def to_extension(rt: Runtime, caller: Record, customer: Record, dialed: str) -> int | None:
    """A call to an extension (alias <extension>@<domain>): of the caller's own client
    (dialed in its SIP domain, or at the proxy's address), or of another client's domain,
    reached only when both are of one corporation (inter-VPBX friends). None: `dialed`
    is no extension there, the call is routed as any other."""
    domain = message.pv("$rd").lower()
    client = rt.directory.domain_client(domain) if domain != rt.settings.sip_domain else None
    if client is None:
        client, domain = customer, str(customer.get("sip_domain") or "")
    found = rt.directory.extension(dialed, domain) if domain else None
    if found is None:
        return None
    if not rules.friends(customer, client):
        log.info("POLICY", f"extension {dialed}@{domain} of another client, not a friend")
        return refuse(rules.SOURCE_REFUSED, rt, caller, customer)
    reason = "Extension" if client.get("id") == customer.get("id") else "Inter-VPBX friend"
    decision = Decision(200, reason, classify.ONNET, payer=str(caller["id"]),
                        customer_id=customer.get("id"))
    return to_registered(rt, found.account, decision, LEG_ONNET)


def decide(rt: Runtime, caller: Record, dialed: str, from_ivr: bool = False,
           access_code: str = "") -> Decision:
    """Classify a call of `caller` to `dialed` from the cached records."""
    directory = rt.directory
    customer_id = caller.get("customer_id")
    customer = directory.customer(customer_id) if customer_id is not None else None
    if customer is None:
        return Decision(403, "No rating profile")
    try:
        product, profiled = billing_product(rt, caller, customer, dialed, access_code)
    except (RateError, KeyError, TypeError, ValueError):
        return Decision(503, "Rating unavailable")  # broken rating data: never free
    if product is None and not profiled:
        return Decision(403, "No rating profile")
    callee = directory.dialed_account(dialed)
    app = directory.app(caller["ivr_app_id"]) if caller.get("ivr_app_id") else None
    # a client with rating profiles none of which rates the call: it cannot be billed
    no_rate = Decision(*profiles.CANNOT_BILL) if profiled else classify.NO_RATING
    return classify.classify(caller, customer, product or {}, dialed, directory.rate,
                             callee=callee, app=app, from_ivr=from_ivr, access_code=access_code,
                             no_rate=no_rate, priced=rules.priced(customer))


def billing_product(rt: Runtime, caller: Record, customer: Record, dialed: str,
                    access_code: str) -> tuple[Record | None, bool]:
    """The product that rates the call (billing/profiles.py), and whether the client's
    rating profiles decide it (not while billing is off among its features)."""
    directory = rt.directory

    def rates(product_id: int) -> bool:
        product = directory.product(product_id)
        return product is not None and classify.find_rate(
            product, dialed.lstrip("+"), directory.rate, access_code) is not None
    billed_by = customer if rules.has_feature(customer, rules.BILLING) else {}
    product_id = profiles.product_for(billed_by, caller.get("product_id"),
                                      datetime.now(timezone.utc), rates)
    product = directory.product(product_id) if product_id is not None else None
    return product, bool(billed_by.get("rating_profiles"))


def toll_out(rt: Runtime, decision: Decision, dialed: str, leg: str, session: str,
             cli: str, access_code: str = "", before: int = 0,
             presenter: Record | None = None, cap: int = 0) -> int:
    """Out to the PSTN gateway: one of the client's external call slots, then for a paid
    call the reservation of what its maximum duration costs (cut `before` seconds short:
    the prepaid card's "Disconnect call before"); the far end sees the outgoing DDI of
    `presenter` (the calling account), or the CLI the call already carries."""
    customer = (rt.directory.customer(decision.customer_id)
                if decision.customer_id is not None else None)
    if decision.paid:  # the client's call slot is taken with the funds, in one round trip
        decision = authorize.reserve(rt, decision, KSR.pv.get("$ci"), slot=True, cap=cap)
        if not decision.ok:
            return refuse(decision, rt, presenter, customer)
    else:
        refusal = policy.take_slot(rt, customer) or policy.daily_refusal(rt, customer)
        if refusal is not None:
            give_back_slot(rt)
            return refuse(refusal, rt, presenter, customer)
        if before and decision.max_duration is not None:
            if decision.max_duration <= before:
                release_reservation(rt, decision)
                return refuse(Decision(402, "Insufficient funds"))
            decision = replace(decision, max_duration=decision.max_duration - before)
    policy.present_ddi(presenter, customer, rt.settings.sip_domain)
    KSR.pv.sets("$ru", rt.gateway_uri(dialed))
    return relay(rt, decision, leg, session, cli, dialed, access_code=access_code, before=before)


def send_to_ivr(rt: Runtime, customer: Record | None, user: str, account: str, session: str,
                app: str = "", ani: str = "") -> None:
    """Point the request at the IVR worker (application server) the client's distribute
    method picks; the branch route signs what the IVR may trust. A worker that does not
    answer within seconds is down: the failure route tries the next, then refuses."""
    first = rules.first_server(customer, session, rt.settings.ivr_workers, next(rt.turns))
    KSR.pv.seti(AVP_IVR_FIRST, first)
    KSR.pv.seti(AVP_IVR_TRIES, 1)
    KSR.pv.sets(AVP_IVR_USER, user)
    KSR.pv.sets(AVP_IVR_ACCOUNT, account)
    KSR.pv.sets(AVP_IVR_SESSION, session)
    KSR.pv.sets(AVP_IVR_APP, app)
    KSR.pv.sets(AVP_IVR_ANI, ani)
    KSR.pv.sets("$ru", rt.ivr_uri(user, first))
    KSR.tm.t_set_fr(0, rt.settings.ivr_answer_timeout * 1000)
    KSR.tm.t_on_branch(ROUTE_BRANCH_IVR)


def to_ivr(rt: Runtime, caller: Record, dialed: str, session: str) -> int:
    """A paid call of a phone that calls via a pass-through IVR: the IVR collects the code."""
    send_to_ivr(rt, rt.directory.customer(caller["customer_id"]), dialed, str(caller["id"]),
                session, app=str(caller["ivr_app_id"]))
    decision = Decision(200, "Via IVR", classify.IVR, payer=caller["id"],
                        customer_id=caller.get("customer_id"))
    return relay(rt, decision, LEG_IVR, session, caller["id"], dialed,
                 access_code=ACCESS_INCOMING)


def to_access_number(rt: Runtime, app: Record, number: str, account: str, ani: str) -> int:
    """A call to an access number goes to the IVR running its application (prepaid card):
    the IVR learns the number, the calling account (on-net) and the ANI from signed headers.
    Kamailio bills nothing for this leg: the application bills it to the card it
    authenticates, by its session accounting mode."""
    if app.get("type") not in ACCESS_NUMBER_APPS:
        return refuse(Decision(404, "Unknown number"))
    session = KSR.pv.get("$ci")
    caller = rt.directory.account(account) if account else None
    customer = rt.directory.customer(caller["customer_id"]) if caller else None
    send_to_ivr(rt, customer, number, account, session, app=str(app["id"]), ani=ani)
    log.info("ACCESS", f"{number} is application {app['id']} ({app.get('type')}), "
                       f"ANI {ani or 'anonymous'}")
    return relay(rt, Decision(200, "Access number", classify.IVR), LEG_IVR, session, ani, number)


def to_registered(rt: Runtime, callee: Record | None, decision: Decision, leg: str) -> int:
    """To the phones the callee has registered. A call in from the PSTN is rated with the
    incoming access code IN (free unless the callee's product rates IN), never at the
    outgoing rate of the callee's own number."""
    if callee is None:
        return refuse(Decision(404, "Unknown number"))
    from kemi import voicemail  # it builds on this module's steps
    if voicemail.to_registered(rt, callee, decision, leg) is not None:
        return EXIT
    KSR.pv.sets("$rU", callee["id"])
    if KSR.registrar.lookup("location") < 0:
        return refuse(Decision(480, "Temporarily Unavailable"))
    if leg == LEG_IN:  # an external call in takes one of the callee's client's slots
        refusal = policy.take_slot(rt, rt.directory.customer(callee["customer_id"]),
                                   incoming=True)
        if refusal is not None:
            return refuse(refusal)
    return relay(rt, decision, leg, KSR.pv.get("$ci"), KSR.pv.get("$fU") or "", callee["id"],
                 access_code=ACCESS_INCOMING if leg == LEG_IN else "")


def relay(rt: Runtime, decision: Decision, leg: str, session: str, cli: str, cld: str,
          access_code: str = "", before: int = 0,
          context: dict[str, str] | None = None) -> int:
    """Anchor media in rtpengine (the client's media relay set), track the dialog (with its
    billing context, and any more `context` dialog variables: all set before the INVITE
    leaves, as its replies may be handled at once by another worker), relay."""
    KSR.rr.record_route()
    customer = (rt.directory.customer(decision.customer_id)
                if decision.customer_id is not None else None)
    if not policy.use_media_set(rt, customer) or not anchor_media():
        release_reservation(rt, decision)
        return refuse(Decision(503, "Media relay unavailable"))
    if rt.req.record:
        record_media(rt)
    watched = not rt.req.record and policy.watch_keys(rt, customer)
    # how a timed-out dialog's sides get their BYE is read when the dialog is created:
    # set it first. A capped call's timeout route sends them (kemi/dialogs.py); any
    # other dialog gets the dialog module's
    if decision.max_duration:
        KSR.pv.sets("$dlg_ctx(timeout_route)", ROUTE_TIMEOUT)
    else:
        KSR.pv.seti("$dlg_ctx(timeout_bye)", 1)
    KSR.dialog.dlg_manage()
    if decision.max_duration:
        # only once the dialog exists: before dlg_manage Kamailio 5.6 finds no dialog,
        # returns -1, and the call keeps default_timeout (12 h) until an ACK re-arms it
        KSR.dialog.dlg_set_timeout(int(decision.max_duration))
    # in-dialog OPTIONS to both sides every ka_interval: a side that vanished without a
    # BYE (408/481) ends the call, and its billing, there
    KSR.dialog.dlg_set_property("ka-src")
    KSR.dialog.dlg_set_property("ka-dst")
    fields: dict[str, object] = {}
    for name, value in (("payer", decision.payer), ("customer", decision.customer_id),
                        ("leg", leg), ("session", session), ("cli", cli), ("cld", cld),
                        ("access_code", access_code), ("setup_ts", f"{time.time():.3f}"),
                        ("reserved", str(decision.reserve or "")),
                        ("max_duration", decision.max_duration or ""),
                        ("cap_before", before or ""), ("slot", rt.req.slot),
                        ("media_set", rt.req.media_set),
                        ("recorded", "1" if rt.req.record else ""),
                        ("keys_watched", "1" if watched else ""),
                        ("caller_ip", KSR.pv.get("$si")),  # where a late 2xx may go
                        *(context or {}).items()):
        fields[name] = value
    callvars.put(fields, fresh=True)
    KSR.tm.t_on_reply(ROUTE_ONREPLY)
    KSR.tm.t_on_failure(ROUTE_FAILURE)
    if KSR.tm.t_relay() < 0:
        release_reservation(rt, decision)
        KSR.rtpengine.rtpengine_delete0()
        KSR.sl.sl_reply_error()
        return EXIT
    metrics.CALLS.labels(leg).inc()
    log.info("RELAY", f"{leg} {cli} -> {cld} ({decision.reason}, max {decision.max_duration})")
    return EXIT


def record_media(rt: Runtime) -> None:
    """rtpengine records the call's media (pcap in its recording directory); when the call
    ends the xDR writer files it as a WAV recording of the client."""
    if KSR.rtpengine.start_recording() > 0:
        log.info("RECORD", "recording the call")
    else:  # the call goes on unrecorded rather than not at all
        log.error("RECORD", "rtpengine did not start recording")
        rt.req.record = False


def anchor_media() -> bool:
    """rtpengine takes the offer; False when it fails on an INVITE that has SDP (a call
    without a media relay would be one-way audio behind NAT and unaccounted media)."""
    if KSR.rtpengine.rtpengine_manage(MEDIA_FLAGS) > 0:
        return True
    body = KSR.pv.get("$rb") or ""
    if "m=" not in body:
        return True  # a late offer: rtpengine gets the SDP with the answer
    log.error("MEDIA", "rtpengine refused the offer")
    metrics.MEDIA_FAILURES.labels("offer").inc()
    return False


def release_reservation(rt: Runtime, decision: Decision) -> None:
    """A call that will not be relayed gives back what it reserved (and its call slot)."""
    give_back_slot(rt)
    if decision.reserve:
        authorize.release(rt, KSR.pv.get("$ci"), decision.payer, str(decision.customer_id))


def give_back_slot(rt: Runtime) -> None:
    policy.give_back_slot(rt, rt.req.slot, KSR.pv.get("$ci"))
    rt.req.slot = ""


def refuse(decision: Decision, rt: Runtime | None = None, caller: Record | None = None,
           customer: Record | None = None) -> int:
    """Answer with the decision's code and reason, and count the refusal. A phone's call
    (`caller`) of a client with voice notifications hears why first (explain)."""
    metrics.REFUSALS.labels(str(decision.code), decision.reason).inc()
    locution = rules.notification(decision, customer)
    if rt is not None and caller is not None and locution and explain(rt, decision, caller,
                                                                        locution):
        return EXIT
    log.info("REFUSE", f"{decision.code} {decision.reason}")
    KSR.sl.send_reply(decision.code, decision.reason)
    return EXIT


def explain(rt: Runtime, decision: Decision, caller: Record, locution: str) -> bool:
    """Voice notification: the refused INVITE goes to an IVR worker, which answers 183,
    plays the locution as early media and ends the call with the refusal's own code and
    reason. Never a dialog, never billed. False when it cannot be sent (the caller gets
    the plain refusal)."""
    customer = rt.directory.customer(caller["customer_id"])
    if not policy.use_media_set(rt, customer) or not anchor_media():
        return False
    dialed = KSR.pv.get("$rU") or ""
    send_to_ivr(rt, customer, dialed, str(caller["id"]), KSR.pv.get("$ci"))
    KSR.pv.sets(AVP_IVR_NOTIFY, internal.notice(decision.code, locution, decision.reason))
    KSR.tm.t_on_reply(ROUTE_ONREPLY)
    KSR.tm.t_on_failure(ROUTE_FAILURE)
    if KSR.tm.t_relay() < 0:
        KSR.rtpengine.rtpengine_delete0()
        return False
    log.info("REFUSE", f"{decision.code} {decision.reason}, explained first ({locution})")
    return True


def sign_ivr_branch(rt: Runtime) -> int:
    """Each IVR worker's branch carries its own signature, good for as long as Kamailio
    waits for that worker: a worker that wakes up later refuses the INVITE instead of
    answering a caller who has moved on."""
    data = internal.Internal(account=message.pv(AVP_IVR_ACCOUNT),
                             dest=message.pv(AVP_IVR_USER),
                             session=message.pv(AVP_IVR_SESSION),
                             app=message.pv(AVP_IVR_APP), ani=message.pv(AVP_IVR_ANI),
                             notify=message.pv(AVP_IVR_NOTIFY))
    headers = internal.sign(rt.secret, message.pv("$ci"), data, ttl=rt.settings.ivr_signature_ttl)
    for name, value in headers.items():
        KSR.hdr.append(f"{name}: {value}\r\n")
    return 1


def on_reply(rt: Runtime) -> int:
    """SDP in a provisional or final reply goes through rtpengine; a 2xx starts billing.
    No reply carries X-TG headers from outside; the IVR's toll leg learns from its 2xx how
    long the call is authorized for (disconnection warnings)."""
    strip_internal_reply()
    status = KSR.pv.get("$rs")
    if KSR.pv.get("$rm") == "INVITE" and isinstance(status, int) and 200 <= status < 300:
        dialogs.mark_connected()
        cap = callvars.get("max_duration")
        if callvars.get("leg") == LEG_TOLL and cap.isdigit():
            KSR.hdr.append(f"{internal.MAX_DURATION}: {cap}\r\n")
    if KSR.pv.get("$rb"):
        anchor_answer(status)
    return 1


def late_answer(rt: Runtime) -> bool:
    """RFC 6026: a 2xx the callee resends, its caller's ACK lost, goes on to the caller after
    tm has forgotten the INVITE (~5 s after its first 2xx), so the caller can ACK again:
    only a 2xx of a dialog of ours answered less than 32 s ago, handled as the first was
    (rtpengine, no X-TG header), and only back to the address the INVITE came from (the
    Via under ours): else a party to the call could aim it anywhere. It must come from the
    host the callee's Contact names: rtpengine takes its SDP, and the caller, forging one,
    would point the callee side of the relay where it likes. Anything else stays a stray
    reply."""
    status = KSR.pv.get("$rs")
    if KSR.pv.get("$rm") != "INVITE" or not (isinstance(status, int) and 200 <= status < 300):
        return False
    call_id, from_tag, to_tag = (message.pv(name) for name in ("$ci", "$ft", "$tt"))
    if not (call_id and from_tag and to_tag) or \
            KSR.dialog.dlg_get(call_id, from_tag, to_tag) < 0:
        return False
    if not from_callee():
        return False
    vias = message.via_hosts(message.raw() or "")
    if len(vias) < 2 or vias[1] != callvars.get("caller_ip").strip("[]"):
        return False
    connected = callvars.get("connect_ts")
    if KSR.pv.get("$dlg(state)") not in DLG_ANSWERED or not connected or \
            time.time() - float(connected) > ANSWER_RESENT_FOR:
        return False
    log.info("REPLY", f"relayed a resent {status} to a caller that has not acknowledged it")
    metrics.LATE_ANSWERS.inc()
    on_reply(rt)
    return True


def from_callee() -> bool:
    """The reply came from the host the current dialog's callee named in its Contact."""
    callee = message.uri_host(message.pv("$dlg(to_contact)"))
    return bool(callee) and callee == message.pv("$si").strip("[]").lower()


def anchor_answer(status: object) -> None:
    """rtpengine takes the SDP of a reply; when it cannot, say so (the caller would send
    its audio straight to the far end, and the far end's audio would go nowhere)."""
    if KSR.rtpengine.rtpengine_manage(MEDIA_FLAGS) > 0:
        return
    log.error("MEDIA", f"rtpengine refused the answer in a {status} reply")
    metrics.MEDIA_FAILURES.labels("answer").inc()


def strip_internal_reply() -> None:
    """No reply carries an X-TG header past us, whoever sent it."""
    message.strip_internal(message.raw() or "")


def on_failure(rt: Runtime) -> int:
    """A failed branch: a busy IVR worker passes the call to the next; else free the media.
    An explained refusal ends with its own code and reason, whatever the IVR did."""
    notice = internal.parse_notice(message.pv(AVP_IVR_NOTIFY))
    if notice is not None:
        KSR.rtpengine.rtpengine_delete0()
        code, _, reason = notice
        if KSR.tm.t_is_canceled() < 0 and KSR.tm.t_check_status(str(code)) < 0:
            KSR.tm.t_reply(code, reason)
        return 1
    if not next_ivr_worker(rt):
        KSR.rtpengine.rtpengine_delete0()
        code = KSR.pv.get("$T_reply_code")
        if isinstance(code, int) and code >= 300 and not callvars.get("final_code"):
            dialogs.remember_final_reply(code, message.pv("$T_reply_reason") or "Call failed")
    return 1


def next_ivr_worker(rt: Runtime) -> bool:
    """True when a full (503/486) or silent (408) IVR worker handed the call to the next
    one; when every worker failed the caller gets our own 503 (a proxy never forwards one)."""
    tries = KSR.pv.get(AVP_IVR_TRIES)
    if not isinstance(tries, int):
        return False
    if KSR.tm.t_is_canceled() > 0 or KSR.tm.t_check_status("503|486|408|500") < 0:
        return False
    if tries >= rt.settings.ivr_workers:
        reason = REASON_IVR_DOWN if KSR.tm.t_check_status("408|500") > 0 else REASON_IVR_FULL
        metrics.REFUSALS.labels("503", reason).inc()
        dialogs.remember_final_reply(503, reason)
        KSR.tm.t_reply(503, reason)
        return False
    worker = KSR.pv.get(AVP_IVR_FIRST) + tries
    KSR.pv.seti(AVP_IVR_TRIES, tries + 1)
    KSR.pv.sets("$ru", rt.ivr_uri(KSR.pv.get(AVP_IVR_USER), worker))
    log.info("IVR", f"worker busy or silent, trying worker {worker % rt.settings.ivr_workers}")
    KSR.tm.t_on_branch(ROUTE_BRANCH_IVR)
    KSR.tm.t_on_reply(ROUTE_ONREPLY)
    KSR.tm.t_on_failure(ROUTE_FAILURE)
    return bool(KSR.tm.t_relay() > 0)
