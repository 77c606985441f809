"""Authorize a paid call against the payer's Redis balances, reserving what it may spend."""
from __future__ import annotations

import KSR
import redis

from billing import policy as rules
from billing.classify import Decision
from hotpath import BackendUnavailable
from kemi import log
from kemi.runtime import Runtime

UNAVAILABLE = Decision(503, "Backend unavailable")


def reserve(rt: Runtime, decision: Decision, call_id: str, slot: bool = False,
            cap: int = 0) -> Decision:
    """The decision of an external call with max duration and reservation, or a refusal
    (402 funds, 403 the client's max daily usage, 503). With `slot`, a client with max
    calls also has one of its call slots taken in the same round trip (403 when all are
    busy), which the dialog's end gives back."""
    payer = rt.directory.account(decision.payer)
    customer_id = payer.get("customer_id") if payer else None
    customer = rt.directory.customer(customer_id) if customer_id is not None else None
    if payer is None or customer is None:
        return Decision(404, "Unknown payer")
    most = rules.max_calls(customer) if slot else 0
    try:
        longest = min(cap, rt.settings.max_call_duration) if cap > 0 \
            else rt.settings.max_call_duration
        granted = rt.reservations.authorize(call_id, decision, payer, customer,
                                              cap=longest, external=True,
                                              max_calls=most)
    except (redis.RedisError, BackendUnavailable, ValueError) as exc:
        # a backend fault or unreadable balance fails closed: never a free call
        log.error("AUTHORIZE", f"reservation failed: {exc!r}")
        return UNAVAILABLE
    if most and granted.ok:
        rt.req.slot = str(customer["id"])  # calls.relay keeps it in the dialog
    log.info("AUTHORIZE", f"payer {decision.payer}: {granted.code} {granted.reason} "
                          f"max {granted.max_duration}s reserve {granted.reserve}")
    return granted


def release(rt: Runtime, call_id: str, payer: str, customer_id: str) -> None:
    """Give back a reservation whose call never connected."""
    try:
        rt.reservations.release(call_id, payer, customer_id)
    except redis.RedisError as exc:  # it expires on its own; log and go on
        KSR.warn(f"[{call_id}] RELEASE: {exc!r}\n")

