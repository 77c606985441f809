-- The money rule's hold, atomic in Redis: billing/money.py's hold() and live_held() in
-- Lua (tests/money_cases.py holds the cases both must agree on). Amounts are integer
-- micro-units (1 unit = 100000).
--
-- KEYS: account balance, account reservations, customer balance, customer reservations,
--       the client's spend today, the client's external-call reservations,
--       [the client's call slots]
-- ARGV: call-id, amount, minimum, ttl ms, account mode, account limit,
--       customer mode, customer limit, daily mode, max daily usage, [max calls]
--       (modes: debit, credit, unlimited, skip; daily: daily or skip)
-- With the slot key, a client that has max calls in progress is refused first (scope
-- "calls"), and a held call takes its slot too (billing/slots.lua, prepended).
-- Holds min(available, amount) for the call unless available < minimum; with no bound at
-- all it holds amount. Returns {status (1 held, 0 refused, -1 a bounding balance is
-- missing), available or false (unlimited), the scope that refused or is missing (""
-- when held), the amount held (0 unless held)}.

-- micro-units of a balance's decimal text; nil when it is not plain text of <= 5 decimals
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
local call_id, amount, minimum = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])

-- what one hash holds for other calls (a retransmitted INVITE replaces its own hold);
-- expired and malformed entries are deleted on the way
local function held(key)
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

-- the client's max calls comes before its money
local slots, most_calls = KEYS[7], tonumber(ARGV[11] or '0')
if slots and most_calls > 0 and busy_slots(slots, call_id, now) >= most_calls then
  return {0, false, 'calls', 0}
end

local scopes = {
  {name = 'account', bal = KEYS[1], hash = KEYS[2], mode = ARGV[5], limit = tonumber(ARGV[6])},
  {name = 'customer', bal = KEYS[3], hash = KEYS[4], mode = ARGV[7], limit = tonumber(ARGV[8])},
  {name = 'daily', bal = KEYS[5], hash = KEYS[6], mode = ARGV[9] or 'skip',
   limit = tonumber(ARGV[10])},
}
-- the smaller bound and its scope (the account's on a tie)
local least, least_scope = false, ''
for _, s in ipairs(scopes) do
  if s.mode == 'debit' or s.mode == 'credit' or s.mode == 'daily' then
    local text = redis.call('GET', s.bal)
    -- nothing spent yet today: the xDR writer writes the day's spend with its first call
    if not text and s.mode == 'daily' then text = '0' end
    local bal = micro(text)
    if not bal then return {-1, false, s.name, 0} end
    local avail = ((s.mode == 'debit') and bal or (s.limit - bal)) - held(s.hash)
    if not least or avail < least then least, least_scope = avail, s.name end
  elseif s.mode == 'unlimited' then
    held(s.hash)
  end
end
if least and least < minimum then return {0, least, least_scope, 0} end

local take = amount
if least and least < take then take = least end
local value = string.format('%d', take) .. ':' .. string.format('%d', now + ttl)
for _, s in ipairs(scopes) do
  if s.mode ~= 'skip' then
    redis.call('HSET', s.hash, call_id, value)
    if redis.call('PTTL', s.hash) < ttl then redis.call('PEXPIRE', s.hash, ttl) end
  end
end
if slots then hold_slot(slots, call_id, now, ttl) end
return {1, least, '', take}
