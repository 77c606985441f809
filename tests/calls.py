"""Calls as the end-to-end scenarios place them: pjsua2 phones registered to the stack,
dialing, and the pass-through IVR's prompts and judgements, each waited for by the event
it causes (a log line of the IVR, audio reaching the phone), never by a pause.

The IVR logs every step of a call under the caller's Call-ID (Kamailio proxies the
caller's INVITE unchanged): "[<call-id>] PROMPT: playing enter_code (...)".
"""
from __future__ import annotations

import re
from decimal import Decimal

from billing.rating import Rate
from tollgate.ng import Ng

TOLL = "12125550123"            # paid: prefix 1, 0.02/min, billed per started minute
TOLL_FREE = "18005550199"
NORTH_AMERICA = Rate(prefix="1", price_first=Decimal("0.02"), price_next=Decimal("0.02"),
                     interval_first=60, interval_next=60)

# the demo tenant (demo/smart-calls.yaml) of the README's walkthrough: (account, password)
DEMO = {"rachel": ("17785551209", "rachel-1209"), "mark": ("17785551210", "mark-1210"),
        "jake": ("17785551211", "jake-1211")}


def phone(tg, sip, name: str, who):
    """A pjsua2 phone registered to Kamailio as `who`: a tests.tenants.Person, or an
    (account ID, SIP password) pair."""
    user, password = (who.id, who.password) if hasattr(who, "password") else who
    ph = sip.phone(name)
    code = ph.register(f"sip:{tg.sip_target}", user, password, tg.settings.sip_domain)
    assert code == 200, f"REGISTER {user} got {code}"
    return ph


def dial(tg, ph, number: str, headers: dict[str, str] | None = None):
    """`ph` calls `number` through Kamailio; returns the call at once."""
    return ph.call(f"sip:{number}@{tg.sip_target}", headers=headers)


def media_port(sdp_message: str) -> int:
    return int(re.search(r"^m=audio (\d+)", sdp_message, re.M).group(1))


def ivr_log(tg) -> str:
    return tg.log("ivr")


def ivr_said(tg, call, text: str) -> bool:
    """True when the IVR logged `text` about `call` ("PROMPT: playing goodbye", ...)."""
    return f"[{call.call_id}] {text}" in ivr_log(tg)


def asked_for_code(tg, sip, call, times: int = 1, timeout: float = 15) -> None:
    """Until the IVR has started asking `call` for its code `times` times and its audio
    reaches the phone: what a person waits for before keying the code in."""
    line = f"[{call.call_id}] PROMPT: playing enter_code"
    sip.wait_for(lambda: call.confirmed or call.disconnected, timeout, "the IVR answering")
    assert call.confirmed, f"the IVR did not answer: {call.codes} {call.last_reason}"
    try:
        sip.wait_for(lambda: ivr_log(tg).count(line) >= times and call.rx_packets() > 0,
                     timeout, f"the IVR asking for the code (#{times})")
    except TimeoutError as exc:  # say what was seen: the IVR's lines and the audio
        raise TimeoutError(f"{exc}; {call.rx_packets()} RTP packets\n"
                           + media_report(tg, call)) from None


def enter_code(tg, sip, call, code: str, times: int = 1) -> None:
    """Key `code` in once the IVR asks for it (for the `times`-th time)."""
    asked_for_code(tg, sip, call, times)
    call.send_dtmf(code)


def wrong_code_judged(tg, sip, account: str, failures: int, timeout: float = 15) -> None:
    """Until the IVR has judged the `failures`-th recent wrong code of `account`."""
    line = f"{failures} recent failures of account {account}"
    sip.wait_for(lambda: line in ivr_log(tg), timeout, line)


def enter_code_and_reach_gateway(tg, sip, gateway, call, code: str):
    """Key in the code when the IVR asks, and return the toll leg answered at the gateway."""
    enter_code(tg, sip, call, code)
    leg = gateway.wait_incoming(15)
    sip.wait_for(lambda: leg.confirmed, 10, "toll leg confirmed")
    return leg


def talking(sip, *calls, timeout: float = 15) -> None:
    """Until audio reaches every end of the given calls (media flows through rtpengine)."""
    try:
        sip.wait_for(lambda: all(c.rx_packets() > 0 for c in calls), timeout,
                     "audio both ways")
    except TimeoutError as exc:  # each end's stream and rtpengine's view, for the next reader
        raise TimeoutError(f"{exc}\n" + "\n".join(
            f"{c.call_id}: {c.media_summary()}" for c in calls)) from None


def heard(tg, sip, call, prompt: str, times: int = 1, timeout: float = 20) -> None:
    """Until the IVR has started playing `prompt` to `call` `times` times and half a second
    of its audio (25 packets) has reached the phone: what a person waits for before
    pressing keys."""
    line = f"[{call.call_id}] PROMPT: playing {prompt} "
    sip.wait_for(lambda: call.confirmed or call.disconnected, timeout, "the IVR answering")
    assert call.confirmed, f"the IVR did not answer: {call.codes} {call.last_reason}"
    sip.wait_for(lambda: ivr_log(tg).count(line) >= times, timeout,
                 f"the IVR playing {prompt} (#{times})")
    start = call.rx_packets()
    try:
        sip.wait_for(lambda: call.rx_packets() >= start + 25, timeout,
                     f"{prompt} reaching the phone")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}: {call.rx_packets() - start} packets; "
                           f"disconnected={call.disconnected}\n"
                           + media_report(tg, call)) from None


def _endpoint(value) -> str:
    if not isinstance(value, dict):
        return "none"
    return f"{value.get('address', b'?').decode()}:{value.get('port')}"


def media_report(tg, call) -> str:
    """What each part saw of a call whose audio never reached the phone, for the next
    reader: the phone's stream, rtpengine's view of each leg, the log lines of the call."""
    lines = [call.media_summary()]
    try:
        ng = Ng(tg.settings.rtpengine_address, tg.settings.rtpengine_ng_port)
        try:
            reply = ng("query", **{"call-id": call.call_id})
        finally:
            ng.close()
        for tag, leg in (reply.get("tags") or {}).items():
            for media in leg.get("medias", []):
                for stream in media.get("streams", []):
                    lines.append(
                        f"rtpengine leg {tag}: local {stream.get('local port')} "
                        f"peer {_endpoint(stream.get('endpoint'))} advertised "
                        f"{_endpoint(stream.get('advertised endpoint'))} "
                        f"in {stream.get('stats', {}).get('packets')} packets")
        if reply.get("result") != b"ok":
            lines.append(f"rtpengine query: {reply}")
    except (OSError, TimeoutError, ValueError) as exc:
        lines.append(f"rtpengine query failed: {exc}")
    lines += [f"{name}: {line}" for name in ("ivr", "rtpengine", "kamailio")
              for line in tg.log(name).splitlines() if call.call_id in line][-40:]
    return "\n".join(lines)


def logged(tg, call, text: str) -> bool:
    return f"[{call.call_id}] {text}" in ivr_log(tg)


def from_the_pstn(tg, gateway, number: str, ani: str):
    """The PSTN gateway calls `number` presenting the caller number `ani`."""
    return gateway.call(f"sip:{number}@{tg.sip_target}",
                        from_uri=f"sip:{ani}@127.0.0.1:{tg.gateway_port}")


def card_then_destination(tg, sip, call, card: str, dest: str = TOLL) -> None:
    heard(tg, sip, call, "enter_card")
    call.send_dtmf(card)
    heard(tg, sip, call, "enter_destination")
    call.send_dtmf(dest + "#")


def card_to_destination(tg, sip, gateway, call, card: str, dest: str = TOLL):
    """Key in the card, dial `dest`, and return the outgoing leg once the gateway answers."""
    card_then_destination(tg, sip, call, card, dest)
    leg = gateway.wait_incoming(15)
    sip.wait_for(lambda: leg.confirmed, 10, "the destination answering")
    return leg


def at_destination_prompt(tg, sip, card, name: str = "caller"):
    """An office phone of a tests.tenants.CardTenant calls its access number and keys in
    the card: returns the call once the IVR asks for the destination."""
    ph = phone(tg, sip, name, (card.phone, card.password))
    call = dial(tg, ph, card.access_number)
    heard(tg, sip, call, "enter_card")
    call.send_dtmf(card.card)
    heard(tg, sip, call, "enter_destination")
    return call
