-- Concurrent external calls of one client, atomic in Redis: billing/policy.py states the
-- rule (max_calls, 0 = unlimited); tollgate/slots.py takes a slot for a call nobody pays
-- for and gives slots back; a paid call takes its slot inside billing/money.lua, in the
-- same round trip as its funds (this file is prepended to it).
--
-- A slot hash (keyspace.call_slots) maps Call-ID -> expiry unix ms. Expired entries (a
-- crashed node's calls) are deleted on the way; a retransmitted INVITE keeps its own slot.

-- calls of the client in progress besides `call_id`
local function busy_slots(key, call_id, now)
  local busy, entries = 0, redis.call('HGETALL', key)
  for i = 1, #entries, 2 do
    local expiry = tonumber(entries[i + 1])
    if not expiry or expiry <= now then
      redis.call('HDEL', key, entries[i])
    elseif entries[i] ~= call_id then
      busy = busy + 1
    end
  end
  return busy
end

-- `call_id` holds one slot until now + ttl (the hash lives as long as its newest slot)
local function hold_slot(key, call_id, now, ttl)
  redis.call('HSET', key, call_id, now + ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
