"""Atomic reserve/release of call funds in Redis (runs billing.reservation's Lua scripts).

KEMI-independent: Kamailio workers, the IVR and the xDR writer all use it with their own
redis.Redis client. Redis must be able to vouch for the balance; when it cannot (key
missing) the caller gets a refusal, never a free call.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

import redis

from billing.authorize import INSUFFICIENT
from billing.classify import Decision
from billing.rating import MAX_CALL_SECONDS, affordable_seconds, charge, first_charge
from billing.reservation import RELEASE_LUA, RESERVE_LUA, from_micro, scopes, to_micro
from tollgate import keyspace

# a reservation outlives the call's hard cap by this much (setup time, BYE in flight)
TTL_MARGIN_S = 120
UNAVAILABLE = (503, "Balance unavailable")
ZERO_MONEY = from_micro(0)


@dataclass(frozen=True)
class Outcome:
    """A reserve attempt: ok, the available amount seen (None = unlimited), failed scope,
    and the amount the script stored for the call (zero for a peek or a refusal)."""
    ok: bool
    available: Decimal | None
    scope: str = ""
    unknown_balance: bool = False
    reserved: Decimal = ZERO_MONEY


class Reservations:
    """Reserve and release funds for calls on one Redis connection."""

    def __init__(self, client: redis.Redis):
        self.client = client
        # register_script retries with EVAL after NOSCRIPT (e.g. Redis restarted)
        self._reserve = client.register_script(RESERVE_LUA)
        self._release = client.register_script(RELEASE_LUA)

    def _run(self, call_id: str, amount: str, ttl_s: float, account: Mapping,
             customer: Mapping, minimum: str | None = None) -> Outcome:
        acct, cust = scopes(account, customer)
        keys = _keys(account["id"], account.get("customer_id"))
        args = [call_id, amount, int(ttl_s * 1000), *acct.args(), *cust.args()]
        if minimum is not None:
            args.append(minimum)
        ok, avail, scope, *rest = self._reserve(keys=keys, args=args)
        scope = scope.decode() if isinstance(scope, bytes) else (scope or "")
        available = None if avail is None else from_micro(avail)
        stored = from_micro(rest[0]) if rest and ok == 1 else ZERO_MONEY
        return Outcome(ok == 1, available, scope, unknown_balance=ok == -1, reserved=stored)

    def peek(self, account: Mapping, customer: Mapping) -> Outcome:
        """Available funds now (minus live reservations) without reserving anything."""
        return self._run("", "peek", 1, account, customer)

    def reserve(self, call_id: str, amount: Decimal, account: Mapping, customer: Mapping,
                ttl_s: float) -> Outcome:
        """Reserve `amount` for `call_id` when every checked balance still covers it."""
        return self._run(call_id, str(to_micro(amount)), ttl_s, account, customer)

    def reserve_up_to(self, call_id: str, amount: Decimal, minimum: Decimal,
                      account: Mapping, customer: Mapping, ttl_s: float) -> Outcome:
        """Reserve min(available, `amount`) for `call_id`, atomically, when every checked
        balance covers at least `minimum` (unlimited: `amount`); Outcome.reserved says how
        much was stored."""
        return self._run(call_id, str(to_micro(amount)), ttl_s, account, customer,
                         minimum=str(to_micro(minimum)))

    def release(self, call_id: str, account_id: str, customer_id: object) -> int:
        """Drop the call's reservation (idempotent); how many entries went away."""
        return int(self._release(keys=_keys(account_id, customer_id)[1::2], args=[call_id]))

    def reserved(self, scope: str, ident: object) -> Decimal:
        """Sum of the reservations stored under one balance, expired ones included."""
        values = self.client.hvals(keyspace.reservations(scope, ident))
        return from_micro(sum(int(v.split(b":")[0]) for v in values))

    def authorize(self, call_id: str, decision: Decision, account: Mapping,
                  customer: Mapping, cap: int = MAX_CALL_SECONDS) -> Decision:
        """Authorize a paid decision against Redis balances and reserve its amount.

        One script call: it reserves what a call of `cap` seconds would cost, or all
        that is available when that is less (refusing below the first interval's charge).
        max_duration is what the stored amount affords; the stored amount may exceed that
        duration's charge by less than one interval's price (not worth a second round
        trip to shrink: the xDR writer releases it after billing the call), and the
        decision's `reserve` is the amount actually held.
        """
        if not decision.ok or not decision.paid:
            return decision
        rate = decision.rate
        assert rate is not None, "a paid decision carries its rate"
        # the stored amount only ever affords up to `cap`: the TTL covers the longest call
        seen = self.reserve_up_to(call_id, charge(rate, cap), first_charge(rate), account,
                                  customer, max(cap, 0) + TTL_MARGIN_S)
        if seen.unknown_balance:
            return Decision(*UNAVAILABLE, payer=decision.payer)
        if not seen.ok:
            return Decision(*INSUFFICIENT, payer=decision.payer,
                            customer_id=decision.customer_id)
        seconds = affordable_seconds(rate, seen.reserved, cap)
        return replace(decision, max_duration=seconds, reserve=seen.reserved)


def _keys(account_id: object, customer_id: object) -> list[str]:
    return [keyspace.balance("account", account_id), keyspace.reservations("account", account_id),
            keyspace.balance("customer", customer_id),
            keyspace.reservations("customer", customer_id)]


__all__ = ["Outcome", "Reservations", "TTL_MARGIN_S"]
