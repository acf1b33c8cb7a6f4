-- add.lua: append one or more messages to a queue, at most once per idempotency key.
-- KEYS: the queue's keys (see common.lua); then, when the request carried an
--   Idempotency-Key, KEYS[29]: the key remembering what that request was answered.
-- ARGV: ttl_ms (0 = none), delay_ms (0 = none), window_ms (how long an idempotency key is
--   remembered), fingerprint (of the request: ttl, delay and values), value1, value2, ...
-- Returns: {last_id, next_due_ms, new} — the ids are last_id-n+1 .. last_id, in the order
-- given; next_due_ms is the time a sweep is due (-1 when the message has no TTL and no
-- delay); new is 1 when the queue was not listed (the caller adds it to the registry).
-- A repeated idempotency key adds nothing and returns {'seen', '<fingerprint> <first> <last>'}
-- of the first request.
local ttl, delay = tonumber(ARGV[1]), tonumber(ARGV[2])
local window, fingerprint = tonumber(ARGV[3]), ARGV[4]
local K_IDEM = KEYS[2 * DEAD + 1]
if K_IDEM then
  local seen = redis.call('GET', K_IDEM)
  if seen then return {'seen', seen} end
end
local n = #ARGV - 4
local last = redis.call('INCRBY', K_SEQ, n)
local now = (ttl > 0 or delay > 0) and now_ms() or 0
-- Lua's unpack() is limited to a few thousand values: write in chunks.
local CHUNK = 1000
for start = 1, n, CHUNK do
  local fields, ids = {}, {}
  for i = start, math.min(start + CHUNK - 1, n) do
    local id = last - n + i
    fields[#fields + 1] = id
    fields[#fields + 1] = ARGV[i + 4]
    ids[#ids + 1] = id
    if ttl > 0 then redis.call('ZADD', K_EXP, now + ttl, id) end
    if delay > 0 then redis.call('ZADD', K_DELAYED, now + delay, id) end
  end
  redis.call('HSET', K_VALS, unpack(fields))
  if delay == 0 then redis.call('LPUSH', K_READY, unpack(ids)) end
end
if delay == 0 then wake() end
if K_IDEM then
  redis.call('SET', K_IDEM, fingerprint .. ' ' .. (last - n + 1) .. ' ' .. last, 'PX', window)
end
local due = -1
if delay > 0 then due = now + delay elseif ttl > 0 then due = now + ttl end
return {last, due, redis.call('HSETNX', K_META, 'listed', '1')}
