-- add.lua: append one or more messages to a queue.
-- KEYS: the queue's keys (see common.lua).
-- ARGV: ttl_ms (0 = none), delay_ms (0 = none), value1, value2, ...
-- Returns: {last_id, next_due_ms} — the ids are last_id-n+1 .. last_id, in the order given
-- (last_id == n means the queue's counter was just created: the caller registers the queue);
-- next_due_ms is the time a sweep is due (-1 when the message has no TTL and no delay).
local ttl, delay = tonumber(ARGV[1]), tonumber(ARGV[2])
local n = #ARGV - 2
local last = redis.call('INCRBY', K_SEQ, n)
local now = (ttl > 0 or delay > 0) and now_ms() or 0
-- Lua's unpack() is limited to a few thousand values: write in chunks.
local CHUNK = 1000
for start = 1, n, CHUNK do
  local fields, ids = {}, {}
  for i = start, math.min(start + CHUNK - 1, n) do
    local id = last - n + i
    fields[#fields + 1] = id
    fields[#fields + 1] = ARGV[i + 2]
    ids[#ids + 1] = id
    if ttl > 0 then redis.call('ZADD', K_EXP, now + ttl, id) end
    if delay > 0 then redis.call('ZADD', K_DELAYED, now + delay, id) end
  end
  redis.call('HSET', K_VALS, unpack(fields))
  if delay == 0 then redis.call('LPUSH', K_READY, unpack(ids)) end
end
if delay == 0 then wake() end
local due = -1
if delay > 0 then due = now + delay elseif ttl > 0 then due = now + ttl end
return {last, due}
