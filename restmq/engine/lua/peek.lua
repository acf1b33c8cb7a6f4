-- peek.lua: the newest `count` waiting messages, newest first, without touching them.
-- KEYS: the queue's keys, then its dead-letter queue's keys (see common.lua).
-- ARGV: count
-- Returns: a flat list id1, value1, refcount1, ...
sweep(now_ms())
local ids = redis.call('LRANGE', K_READY, 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', K_VALS, id) or ''
  out[#out + 1] = redis.call('HGET', K_REFS, id) or '0'
end
return out
