-- take.lua: remove and return up to `count` oldest waiting messages.
-- KEYS: the queue's keys, then its dead-letter queue's keys (see common.lua).
-- ARGV: count
-- Returns: a flat list id1, value1, refcount1, expiry1, deliveries1, id2, ... (empty when the
-- queue is empty). expiry is the ms time its TTL ends (-1: none), deliveries how often it was
-- reserved: what putback.lua needs to undo the take exactly.
local now = now_ms()
sweep(now)
local out = {}
local wanted = tonumber(ARGV[1])
while #out < wanted * 5 do
  local id, value = pop_live(now)
  if not id then break end
  out[#out + 1] = id
  out[#out + 1] = value
  out[#out + 1] = redis.call('HGET', K_REFS, id) or '0'
  out[#out + 1] = redis.call('ZSCORE', K_EXP, id) or '-1'
  out[#out + 1] = redis.call('HGET', K_DELIV, id) or '0'
  forget(id)
end
return out
