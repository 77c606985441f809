"""KDMQ: Kamailio's DMQ replication between the nodes of a cluster (docs/NODES.md)."""
from __future__ import annotations

from decimal import Decimal
from functools import cache

import KSR

from kemi import log, message
from kemi.constants import EXIT
from kemi.runtime import Runtime
from tollgate import metrics
from tollgate.stack import DIALOG_ID_STEP, addresses

KDMQ = "KDMQ"
REASON_NOT_A_PEER = "Not a cluster peer"
CSEQ_MARGIN = 10


def kdmq(rt: Runtime) -> int | None:
    """A KDMQ request from a configured peer, to this node's DMQ socket, goes to the DMQ
    module (bans, failed-auth counters, dialogs); from anyone else, or any other request
    on the DMQ socket, it is dropped: a forged KDMQ could lift a ban or plant a dialog.
    Peers pass before reqinit, so replication traffic is never taken for a flood."""
    if not rt.settings.dmq_listen:
        return None  # a single node: KDMQ is just an unknown method (405 later)
    to_dmq = (KSR.pv.get("$Ri"), KSR.pv.get("$Rp")) in sockets(rt.settings.dmq_listen)
    is_kdmq = KSR.pv.get("$rm") == KDMQ
    if not to_dmq and not is_kdmq:
        return None
    source = (KSR.pv.get("$si"), KSR.pv.get("$sp"))
    if to_dmq and is_kdmq and source in sockets(rt.settings.dmq_peers):
        KSR.dmq.handle_message()
        return EXIT
    log.warn("CLUSTER", f"dropped {KSR.pv.get('$rm')} from {source[0]}:{source[1]} "
                        f"to {'the DMQ socket' if to_dmq else 'the SIP socket'}")
    metrics.REFUSALS.labels("drop", REASON_NOT_A_PEER).inc()
    return EXIT


@cache
def sockets(setting: str) -> frozenset[tuple[str, int]]:
    """The (host, port) pairs of an address setting, parsed once."""
    return frozenset(addresses(setting))


def answered_at(rt: Runtime, setup_ts: str) -> str:
    """When a call that another node set up was answered, for its end here: DMQ gives a
    node the dialog's variables as they were when the INVITE left the other node (before
    the 2xx set connect_ts) and the dialog's start from its confirmation, in whole
    seconds (so never before the setup, kept in milliseconds). "" for this node's own
    dialogs, and outside a cluster."""
    if not rt.settings.dmq_listen:
        return ""
    h_id, start = KSR.pv.get("$dlg(h_id)"), KSR.pv.get("$dlg(start_ts)")
    if not isinstance(h_id, int) or h_id % DIALOG_ID_STEP == rt.settings.node_id:
        return ""
    if not isinstance(start, int) or start <= 0:
        return ""
    return f"{max(Decimal(start), Decimal(setup_ts or 0)):.3f}"


def hang_up(rt: Runtime) -> None:
    """A call another node set up has reached its timeout here, not by a BYE: that node
    is gone (else its own timer would have ended the call first). DMQ does not carry the
    dialog's BYE-on-timeout flag, so Kamailio ends the dialog silently: send both sides
    the BYE ourselves, straight to their contacts (routes beyond ours are not kept)."""
    if KSR.pv.get("$rm") == "BYE":
        return
    ends = dialog_ends()
    for to_callee in (False, True):
        sent = direct_bye(ends, to_callee)
        if sent is not None:
            log.warn("CLUSTER", f"timed out here, set up on another node: BYE to "
                                f"{sent or 'a side'} {'sent' if sent else 'NOT sent'}")


End = tuple[str, str, str, str]     # a side of a dialog: its URI, tag, contact, CSeq


def dialog_ends() -> tuple[str, End, End]:
    """The current dialog's Call-ID, caller and callee, read while the dialog exists."""
    return (message.pv("$dlg(callid)"),
            (message.pv("$dlg(from_uri)"), message.pv("$dlg(from_tag)"),
             message.pv("$dlg(from_contact)"), message.pv("$dlg(from_cseq)")),
            (message.pv("$dlg(to_uri)"), message.pv("$dlg(to_tag)"),
             message.pv("$dlg(to_contact)"), message.pv("$dlg(to_cseq)")))


def direct_bye(ends: tuple[str, End, End], to_callee: bool) -> str | None:
    """A BYE to one side of a dialog (`dialog_ends`) sent straight to that side's contact,
    whatever state the dialog module holds the dialog in: the contact's URI when sent, ""
    when tm refused it, None when the side has no contact."""
    call_id, caller, callee = ends
    (uri, tag, _, cseq), (peer_uri, peer_tag, contact, _) = \
        (caller, callee) if to_callee else (callee, caller)
    if not contact:
        return None
    # past any request the side may have sent after the dialog was replicated
    seq = (int(cseq) if cseq.isdigit() else 0) + CSEQ_MARGIN
    headers = (f"From: <{uri}>;tag={tag}\r\nTo: <{peer_uri}>;tag={peer_tag}\r\n"
               f"Call-ID: {call_id}\r\nCSeq: {seq} BYE\r\nMax-Forwards: 70\r\n")
    target = _uri_of(contact)
    return target if KSR.tm.t_uac_send("BYE", target, "", "", headers, "") > 0 else ""


def _uri_of(contact: str) -> str:
    """The URI of a Contact value: inside <>, else up to its first parameter."""
    if "<" in contact:
        return contact.split("<", 1)[1].split(">", 1)[0]
    return contact.split(";", 1)[0]
