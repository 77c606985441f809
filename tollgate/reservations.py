"""Atomic reserve/release of call funds in Redis (runs billing.reservation's Lua scripts).

KEMI-independent: Kamailio workers, the IVR and the xDR writer all use it with their own
redis.Redis client. Redis must be able to vouch for the balance; when it cannot (key
missing) the caller gets a refusal, never a free call.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import redis

from billing.authorize import authorize_available
from billing.classify import Decision
from billing.rating import MAX_CALL_SECONDS
from billing.reservation import (RELEASE_LUA, RESERVE_LUA, balance_key, from_micro,
                                 reservation_key, scopes, to_micro)

# a reservation outlives the call's hard cap by this much (setup time, BYE in flight)
TTL_MARGIN_S = 120
RACE_RETRIES = 3
UNAVAILABLE = (503, "Balance unavailable")


@dataclass(frozen=True)
class Outcome:
    """A reserve attempt: ok, the available amount seen (None = unlimited), failed scope."""
    ok: bool
    available: Decimal | None
    scope: str = ""
    unknown_balance: bool = False


class Reservations:
    """Reserve and release funds for calls on one Redis connection."""

    def __init__(self, client: redis.Redis):
        self.client = client
        # register_script retries with EVAL after NOSCRIPT (e.g. Redis restarted)
        self._reserve = client.register_script(RESERVE_LUA)
        self._release = client.register_script(RELEASE_LUA)

    def _run(self, call_id: str, amount: str, ttl_s: int, account: Mapping,
             customer: Mapping) -> Outcome:
        acct, cust = scopes(account, customer)
        keys = _keys(account["id"], account.get("customer_id"))
        args = [call_id, amount, int(ttl_s * 1000), *acct.args(), *cust.args()]
        ok, avail, scope = self._reserve(keys=keys, args=args)
        scope = scope.decode() if isinstance(scope, bytes) else (scope or "")
        available = None if avail is None else from_micro(avail)
        return Outcome(ok == 1, available, scope, unknown_balance=ok == -1)

    def peek(self, account: Mapping, customer: Mapping) -> Outcome:
        """Available funds now (minus live reservations) without reserving anything."""
        return self._run("", "peek", 1, account, customer)

    def reserve(self, call_id: str, amount: Decimal, account: Mapping, customer: Mapping,
                ttl_s: int) -> Outcome:
        """Reserve `amount` for `call_id` when every checked balance still covers it."""
        return self._run(call_id, str(to_micro(amount)), ttl_s, account, customer)

    def release(self, call_id: str, account_id: str, customer_id: object) -> int:
        """Drop the call's reservation (idempotent); how many entries went away."""
        return int(self._release(keys=_keys(account_id, customer_id)[1::2], args=[call_id]))

    def reserved(self, scope: str, ident: object) -> Decimal:
        """Sum of the reservations stored under one balance, expired ones included."""
        values = self.client.hvals(reservation_key(scope, ident))
        return from_micro(sum(int(v.split(b":")[0]) for v in values))

    def authorize(self, call_id: str, decision: Decision, account: Mapping,
                  customer: Mapping, cap: int = MAX_CALL_SECONDS) -> Decision:
        """Authorize a paid decision against Redis balances and reserve its amount."""
        if not decision.ok or not decision.paid:
            return decision
        seen = self.peek(account, customer)
        for _ in range(RACE_RETRIES):
            if seen.unknown_balance:
                return Decision(*UNAVAILABLE, payer=decision.payer)
            granted = authorize_available(decision, seen.available, cap)
            if not granted.ok:
                return granted
            assert granted.reserve is not None and granted.max_duration is not None
            seen = self.reserve(call_id, granted.reserve, account, customer,
                                granted.max_duration + TTL_MARGIN_S)
            if seen.ok:
                return granted
        # lost every race to concurrent calls: refuse rather than overspend
        return Decision(402, "Insufficient funds", payer=decision.payer)


def _keys(account_id: object, customer_id: object) -> list[str]:
    return [balance_key("account", account_id), reservation_key("account", account_id),
            balance_key("customer", customer_id), reservation_key("customer", customer_id)]


__all__ = ["Outcome", "Reservations", "TTL_MARGIN_S"]
