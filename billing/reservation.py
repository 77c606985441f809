"""Reservations of funds for calls in progress: the Redis Lua script and its arguments.

Keys: tollgate.keyspace.balance (decimal text) and tollgate.keyspace.reservations (hash
call-id -> "<micro>:<expires ms>"), per account and per customer.
Inside Lua every amount is an integer number of micro-units, 1 unit = 100000 micro
(numeric(18,5) has 5 decimals, so the conversion is exact both ways). Lua 5.1 numbers are
doubles, exact for integers up to 2**53: amounts up to 90 billion units stay exact.
Each reservation carries its expiry; the script skips and deletes expired ones, so a node
that crashed mid-call cannot freeze a balance for longer than that call's hard cap.
This module builds arguments only; tollgate/reservations.py runs the script.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from billing.rating import QUANTUM, money

MICRO = 100000
# checks: "debit" available = balance; "credit" available = limit - balance;
# "unlimited" records without checking; "skip" neither checks nor records
DEBIT, CREDIT, UNLIMITED, SKIP = "debit", "credit", "unlimited", "skip"


def to_micro(amount: Decimal | str) -> int:
    """Exact integer micro-units of an amount with at most 5 decimals."""
    value = money(amount)
    micro = value * MICRO
    if micro != micro.to_integral_value():
        raise ValueError(f"amount {amount} has more than 5 decimals")
    return int(micro)


def from_micro(micro: int) -> Decimal:
    """The Decimal amount of integer micro-units."""
    return (Decimal(int(micro)) / MICRO).quantize(QUANTUM)


@dataclass(frozen=True)
class Scope:
    """How one balance (account or customer) takes part in a reservation."""
    mode: str
    limit_micro: int = 0

    def args(self) -> list[str]:
        return [self.mode, str(self.limit_micro)]


def scopes(account: Mapping, customer: Mapping) -> tuple[Scope, Scope]:
    """The account and customer scopes the money model gives this payer."""
    if (account.get("billing_model") or DEBIT) == DEBIT:
        return Scope(DEBIT), Scope(SKIP)
    return _credit_scope(account.get("credit_limit")), _credit_scope(customer.get("credit_limit"))


def _credit_scope(limit: object) -> Scope:
    if limit is None or limit == "":
        return Scope(UNLIMITED)
    return Scope(CREDIT, to_micro(limit))


# KEYS: account balance, account hash, customer balance, customer hash
# ARGV: call-id, amount micro (or "peek"), ttl ms, account mode, limit, customer mode, limit,
#       [minimum micro]
# Returns {ok (1/0/-1), available micro or false (unlimited), scope that failed or "",
#          reserved micro (0 for a peek)}.
# Exact mode (no ARGV[8]): reserve `amount` when every checked balance covers it.
# Up-to mode (ARGV[8] = minimum): refuse when a checked balance is below the minimum,
# else reserve min(least available, amount) (`amount` when nothing is checked).
RESERVE_LUA = r"""
local function micro(text)
  if not text then return nil end
  local sign = 1
  if string.sub(text, 1, 1) == '-' then sign = -1; text = string.sub(text, 2) end
  local whole, frac = string.match(text, '^(%d+)%.?(%d*)$')
  if not whole or #frac > 5 then return nil end
  frac = frac .. string.rep('0', 5 - #frac)
  return sign * (tonumber(whole) * 100000 + tonumber(frac))
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local call_id, amount, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local minimum = ARGV[8] and tonumber(ARGV[8])
local need = minimum or (amount ~= 'peek' and tonumber(amount))

-- live reservations of one hash except this call's own (a retransmitted INVITE)
local function reserved(key)
  local sum, entries = 0, redis.call('HGETALL', key)
  for i = 1, #entries, 2 do
    local a, exp = string.match(entries[i + 1], '^(-?%d+):(%d+)$')
    if not a or tonumber(exp) <= now then
      redis.call('HDEL', key, entries[i])
    elseif entries[i] ~= call_id then
      sum = sum + tonumber(a)
    end
  end
  return sum
end

local scopes = {
  {name = 'account', bal = KEYS[1], hash = KEYS[2], mode = ARGV[4], limit = tonumber(ARGV[5])},
  {name = 'customer', bal = KEYS[3], hash = KEYS[4], mode = ARGV[6], limit = tonumber(ARGV[7])},
}
local least = false
for _, s in ipairs(scopes) do
  if s.mode == 'debit' or s.mode == 'credit' then
    local bal = micro(redis.call('GET', s.bal))
    if not bal then return {-1, false, s.name, 0} end
    local avail = (s.mode == 'debit') and bal or (s.limit - bal)
    avail = avail - reserved(s.hash)
    if not least or avail < least then least = avail end
    if need and avail < need then return {0, avail, s.name, 0} end
  elseif s.mode == 'unlimited' then
    reserved(s.hash)
  end
end
if amount == 'peek' then return {1, least, '', 0} end
local take = tonumber(amount)
if minimum and least and least < take then take = least end
local value = string.format('%d', take) .. ':' .. string.format('%d', now + ttl)
for _, s in ipairs(scopes) do
  if s.mode ~= 'skip' then
    redis.call('HSET', s.hash, call_id, value)
    if redis.call('PTTL', s.hash) < ttl then redis.call('PEXPIRE', s.hash, ttl) end
  end
end
return {1, least, '', take}
"""

# KEYS: account hash, customer hash; ARGV: call-id. Returns how many entries went away.
RELEASE_LUA = r"""
return redis.call('HDEL', KEYS[1], ARGV[1]) + redis.call('HDEL', KEYS[2], ARGV[1])
"""
