-- depth.lua: the counts of some queues for a metrics scrape — read only, with no sweep (the
-- sweeper keeps TTLs, delays and leases due within its interval). Standalone (no common.lua):
-- it gets only the five keys it reads of each queue, and the caller gives it queues of one
-- Cluster hash slot at a time (restmq.engine.store.QueueStore.scan_depths), so that reading
-- 100,000 queues takes a few thousand calls, each touching one slot.
-- KEYS: per queue, five keys: its ready, leased, delayed and consumers keys, then its
--   dead-letter queue's ready key (the same as its own ready key for a dead-letter queue).
-- ARGV: none
-- Returns: per queue, in order: waiting, leased, delayed, dead, live consumers (a consumer
--   whose presence deadline has passed is not counted).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for base = 0, #KEYS - 5, 5 do
  local consumers = 0
  local flat = redis.call('HGETALL', KEYS[base + 4])
  for i = 2, #flat, 2 do
    if tonumber(flat[i]) >= now then consumers = consumers + 1 end
  end
  local dead = 0
  if KEYS[base + 5] ~= KEYS[base + 1] then dead = redis.call('LLEN', KEYS[base + 5]) end
  out[#out + 1] = redis.call('LLEN', KEYS[base + 1])
  out[#out + 1] = redis.call('ZCARD', KEYS[base + 2])
  out[#out + 1] = redis.call('ZCARD', KEYS[base + 3])
  out[#out + 1] = dead
  out[#out + 1] = consumers
end
return out
