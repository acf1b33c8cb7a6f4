-- peek.lua: the newest `count` waiting messages, newest first, without touching them.
-- KEYS: the queue's keys, then its dead-letter queue's keys (see common.lua).
-- ARGV: count
-- Returns: a flat list id1, value1, refcount1, ...
local now = now_ms()
sweep(now)
local ids = redis.call('LRANGE', K_READY, 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, id in ipairs(ids) do
  local value = redis.call('HGET', K_VALS, id)
  if value and not is_expired(id, now) then
    out[#out + 1] = id
    out[#out + 1] = value
    out[#out + 1] = redis.call('HGET', K_REFS, id) or '0'
  end
end
return out
