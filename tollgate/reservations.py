"""Funds held by calls in progress, in Redis: runs billing/money.lua, the atomic twin of
billing.money.hold, and releases and reads the holds.

KEMI-independent: Kamailio workers authorize and release with it, the CLI reads live holds
with it, each on its own redis.Redis client. Redis must be able to vouch for a bounding
balance; when it cannot (key missing) the caller gets a refusal, never a free call.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import redis

from billing import daily, money, rating
from billing.classify import Decision
from billing.money import Outcome
from billing.rating import MAX_CALL_SECONDS
from tollgate import keyspace

# a reservation outlives the call's hard cap by this much (setup time, BYE in flight)
TTL_MARGIN_S = 120


class Reservations:
    """Hold, release and read funds for calls on one Redis connection."""

    def __init__(self, client: redis.Redis):
        self.client = client
        # register_script retries with EVAL after NOSCRIPT (e.g. Redis restarted)
        self._reserve = client.register_script(money.lua_script())

    def reserve(self, call_id: str, amount: Decimal, account: Mapping[str, Any],
                customer: Mapping[str, Any], ttl_s: float,
                minimum: Decimal | None = None, day: str = "", max_calls: int = 0) -> Outcome:
        """Hold min(available, `amount`) for `call_id`, atomically, unless available is below
        `minimum` (default `amount`: all or nothing); Outcome.reserved is what was held.
        With `day` (an external call) the client's max daily usage of that day bounds too;
        with `max_calls` the call also takes one of the client's call slots, or is refused
        (scope money.CALLS) when the client has that many calls already."""
        acct, cust = money.bounds(account, customer)
        today = money.daily(customer, external=bool(day))
        customer_id = account.get("customer_id")
        keys = _keys(account["id"], customer_id) + [
            keyspace.daily_spent(customer_id, day), keyspace.reservations(money.DAILY, customer_id)]
        args: list[str | int] = [call_id, money.to_micro(amount),
                money.to_micro(amount if minimum is None else minimum), int(ttl_s * 1000),
                acct.mode, _limit(acct), cust.mode, _limit(cust), today.mode, _limit(today)]
        if max_calls > 0:
            keys.append(keyspace.call_slots(customer_id))
            args.append(max_calls)
        status, avail, scope, held = self._reserve(keys=keys, args=args)
        scope = scope.decode() if isinstance(scope, bytes) else (scope or "")
        return Outcome(status == 1, None if avail is None else money.from_micro(avail), scope,
                       unknown_balance=status == -1,
                       reserved=money.from_micro(held) if status == 1 else money.NOTHING)

    def release(self, call_id: str, account_id: str, customer_id: object) -> int:
        """Drop the call's holds (idempotent); how many entries went away."""
        with self.client.pipeline(transaction=True) as pipe:
            for key in held_keys(account_id, customer_id):
                pipe.hdel(key, call_id)
            return sum(int(n) for n in pipe.execute())

    def held(self, scope: str, ident: object) -> Decimal:
        """What live calls hold on one balance now (expired holds excluded)."""
        entries = self.client.hgetall(keyspace.reservations(scope, ident))
        return money.live_held(entries, int(time.time() * 1000))

    def authorize(self, call_id: str, decision: Decision, account: Mapping[str, Any],
                  customer: Mapping[str, Any], cap: int = MAX_CALL_SECONDS,
                  external: bool = False, now: float | None = None,
                  max_calls: int = 0) -> Decision:
        """billing.money.authorize with the hold taken in Redis: one script call holds what
        a call of `cap` seconds costs, or all that is available when that is less. An
        `external` call is bounded by its client's max daily usage of the day it starts
        (`now`, default the clock, in the client's timezone) and, with `max_calls`, takes
        one of the client's call slots in the same script."""
        day = daily.day_of(customer.get("timezone"), time.time() if now is None else now) \
            if external else ""

        # the held amount only ever affords up to `cap`: the TTL covers the longest call
        def take(amount: Decimal, minimum: Decimal) -> Outcome:
            return self.reserve(call_id, amount, account, customer,
                                max(cap, 0) + TTL_MARGIN_S, minimum=minimum, day=day,
                                max_calls=max_calls)
        granted = money.authorize(decision, take, cap)
        if granted.reason == money.DAILY_REACHED[1]:  # the xDR writer e-mails the client
            self.client.sadd(keyspace.DAILY_REACHED, f"{customer.get('id')}:{day}")
        return granted

    def daily_reached(self, customer: Mapping[str, Any], now: float | None = None) -> bool:
        """True when the client has a max daily usage and today's spend has reached it (a
        free external call, which holds nothing, is refused then too)."""
        bound = money.daily(customer)
        if bound.limit is None:
            return False
        return self.spent(customer, now) >= bound.limit

    def spent(self, customer: Mapping[str, Any], now: float | None = None) -> Decimal:
        """The client's external outbound spend today (zero when none was written)."""
        day = daily.day_of(customer.get("timezone"), time.time() if now is None else now)
        text = self.client.get(keyspace.daily_spent(customer.get("id"), day))
        return rating.money(text.decode() if isinstance(text, bytes) else text or "0")


def _limit(bound: money.Bound) -> int:
    return 0 if bound.limit is None else money.to_micro(bound.limit)


def held_keys(account_id: object, customer_id: object) -> tuple[str, str, str]:
    """The reservation hashes a call's holds may sit in: its payer's, its customer's and
    its client's external calls of the day."""
    return (keyspace.reservations(money.ACCOUNT, account_id),
            keyspace.reservations(money.CUSTOMER, customer_id),
            keyspace.reservations(money.DAILY, customer_id))


def _keys(account_id: object, customer_id: object) -> list[str]:
    return [keyspace.balance(money.ACCOUNT, account_id),
            keyspace.reservations(money.ACCOUNT, account_id),
            keyspace.balance(money.CUSTOMER, customer_id),
            keyspace.reservations(money.CUSTOMER, customer_id)]


__all__ = ["Outcome", "Reservations", "TTL_MARGIN_S", "held_keys"]
