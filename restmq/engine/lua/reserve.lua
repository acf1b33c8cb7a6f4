-- reserve.lua: lease up to N oldest waiting messages for a visibility timeout.
-- KEYS: the queue's keys, then its dead-letter queue's keys (see common.lua).
-- ARGV: timeout_ms, receipt1, receipt2, ... (one fresh receipt per wanted message)
-- Returns: {deadline_ms, id1, value1, receipt1, deliveries1, id2, ...}
local timeout = tonumber(ARGV[1])
local now = now_ms()
sweep(now)
local out = {now + timeout}
for i = 2, #ARGV do
  local id, value = pop_live(now)
  if not id then break end
  redis.call('ZADD', K_LEASED, now + timeout, id)
  redis.call('HSET', K_LEASES, id, ARGV[i])
  out[#out + 1] = id
  out[#out + 1] = value
  out[#out + 1] = ARGV[i]
  out[#out + 1] = redis.call('HINCRBY', K_DELIV, id, 1)
end
return out
