"""The request route as a table of contents: each step is a short function in kemi/.

A step returns EXIT when it has answered or relayed the request; the route then stops.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable

import KSR
import redis

from hotpath import BackendUnavailable
from kemi import calls, cluster, dialogs, entry, forwarding, log, registrar, voicemail
from kemi.constants import EXIT
from kemi.runtime import Runtime
from tollgate import metrics

STEPS = (cluster.kdmq, entry.reqinit, entry.readable, entry.cancel, entry.within_dialog,
         entry.retransmission, entry.internal_headers, entry.options, registrar.register,
         voicemail.message_waiting, entry.only_invite, calls.from_ivr,
         voicemail.mailbox_by_ani, forwarding.follow_me, calls.from_gateway, calls.from_phone)


class Router:
    """The object app_python3 calls: request, reply, failure, dialog and timer routes."""

    def __init__(self) -> None:
        self.rt = Runtime()

    def child_init(self, rank: int) -> int:
        self.rt.child_init()
        return 0

    # SIP request routing: the order is the policy
    def ksr_request_route(self, msg: object) -> int:
        try:
            for step in STEPS:
                if step(self.rt) == EXIT:
                    return 1
        except (BackendUnavailable, redis.RedisError) as exc:
            # nothing can vouch for the caller: fail closed, never a free call
            log.error("BACKEND", f"{type(exc).__name__}: {exc}")
            metrics.REFUSALS.labels("503", "Backend unavailable").inc()
            KSR.sl.send_reply(503, "Backend unavailable")
        except Exception as exc:  # a bug must cost one request, never a worker or a traceback
            log.error("BUG", _where(exc))
            metrics.REFUSALS.labels("500", "Internal error").inc()
            if not KSR.is_ACK():
                KSR.sl.send_reply(500, "Internal error")
        return 1

    # every reply Kamailio receives, before the transaction's own reply route
    def ksr_reply_route(self, msg: object) -> int:
        return _guarded("REPLY", entry.reply_of_ours, self.rt)

    # every request about to be sent: nothing to change, tollgate decides in the routes
    def ksr_onsend_route(self, msg: object) -> int:
        return 1

    # replies to calls we relayed: rtpengine answers for SDP in 18x/2xx (a forwarded call
    # its own phone answered is a call in)
    def ksr_onreply_manage(self, msg: object) -> int:
        return _guarded("REPLY", forwarding.on_reply, self.rt)

    # each branch to an IVR worker: its own signature, good while we wait for that worker
    def ksr_branch_ivr(self, msg: object) -> int:
        return _guarded("IVR-BRANCH", calls.sign_ivr_branch, self.rt)

    # each branch of a forwarded call: the gateway's present the DID
    def ksr_branch_follow_me(self, msg: object) -> int:
        return _guarded("FOLLOW-ME-BRANCH", forwarding.dress_branch, self.rt)

    # a branch failed: the next follow-me number, the next IVR worker, or the answer upstream
    def ksr_failure_manage(self, msg: object) -> int:
        return _guarded("FAILURE", forwarding.on_failure, self.rt)

    # dialog start/end/failed: xDR events and reservation bookkeeping
    def ksr_dialog_event(self, msg: object, event: str) -> int:
        return _guarded("DIALOG", dialogs.on_event, self.rt, event)

    # once a second in the timer process: replay spooled xDR events
    def ksr_housekeeping(self, msg: object, name: str) -> int:
        return _guarded("HOUSEKEEPING", dialogs.housekeeping, self.rt)


def _guarded(step: str, route: Callable[..., int], *args: object) -> int:
    """Run a route that cannot answer anyone: a fault is one log line, not a traceback."""
    try:
        return route(*args)
    except Exception as exc:
        log.error(step, _where(exc))
        return 1


def _where(exc: BaseException) -> str:
    """One line: the exception and the innermost frame of ours it came from."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    place = f" at {'/'.join(last.filename.rsplit('/', 2)[-2:])}:{last.lineno}" if last else ""
    return f"{type(exc).__name__}: {exc}{place}".replace("\n", " ")
