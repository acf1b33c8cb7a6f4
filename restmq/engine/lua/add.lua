-- add.lua: append one or more messages to a queue.
-- KEYS: the queue's keys (see common.lua).
-- ARGV: ttl_ms (0 = none), delay_ms (0 = none), value1, value2, ...
-- Returns: {last_id, next_due_ms} — the ids are last_id-n+1 .. last_id, in the order given;
-- next_due_ms is the time a sweep is due (-1 when the message has no TTL and no delay).
local ttl, delay = tonumber(ARGV[1]), tonumber(ARGV[2])
local n = #ARGV - 2
local last = redis.call('INCRBY', K_SEQ, n)
local now = (ttl > 0 or delay > 0) and now_ms() or 0
local fields, ids = {}, {}
for i = 1, n do
  local id = last - n + i
  fields[#fields + 1] = id
  fields[#fields + 1] = ARGV[i + 2]
  ids[i] = id
end
redis.call('HSET', K_VALS, unpack(fields))
for _, id in ipairs(ids) do
  if ttl > 0 then redis.call('ZADD', K_EXP, now + ttl, id) end
  if delay > 0 then redis.call('ZADD', K_DELAYED, now + delay, id) end
end
if delay == 0 then
  redis.call('LPUSH', K_READY, unpack(ids))
  wake()
end
local due = -1
if delay > 0 then due = now + delay elseif ttl > 0 then due = now + ttl end
return {last, due}
