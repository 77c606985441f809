-- Concurrent external calls of one client, atomic in Redis: tollgate/slots.py takes and
-- gives back the slots; billing/policy.py states the rule (max_calls, 0 = unlimited).
--
-- KEYS: the client's slot hash (keyspace.call_slots): Call-ID -> expiry unix ms
-- ARGV: call-id, max calls, ttl ms
-- Expired entries (a crashed node's calls) are deleted on the way; a retransmitted INVITE
-- keeps its own slot. Returns {1 taken | 0 refused, calls in progress besides this one}.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key, call_id = KEYS[1], ARGV[1]
local most, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local busy = 0
local entries = redis.call('HGETALL', key)
for i = 1, #entries, 2 do
  local expiry = tonumber(entries[i + 1])
  if not expiry or expiry <= now then
    redis.call('HDEL', key, entries[i])
  elseif entries[i] ~= call_id then
    busy = busy + 1
  end
end
if most > 0 and busy >= most then
  return {0, busy}
end
redis.call('HSET', key, call_id, now + ttl)
redis.call('PEXPIRE', key, ttl)
return {1, busy}
