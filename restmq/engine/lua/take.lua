-- take.lua: remove and return up to `count` oldest waiting messages.
-- KEYS: the queue's keys, then its dead-letter queue's keys (see common.lua).
-- ARGV: count
-- Returns: a flat list id1, value1, refcount1, id2, ... (empty when the queue is empty).
sweep(now_ms())
local out = {}
local wanted = tonumber(ARGV[1])
while #out < wanted * 3 do
  local id = redis.call('RPOP', K_READY)
  if not id then break end
  local value = redis.call('HGET', K_VALS, id)
  if value then
    out[#out + 1] = id
    out[#out + 1] = value
    out[#out + 1] = redis.call('HGET', K_REFS, id) or '0'
    forget(id)
  end
end
return out
