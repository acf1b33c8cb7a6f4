-- idle.lua: forget a queue that has been unused for `idle_ms`: no message (waiting, delayed,
-- leased, or dead in its dead-letter queue), no live streaming consumer or long poller, and
-- nothing set (stopped, roundrobin, max_deliveries; for a dead-letter queue, also no
-- max_deliveries on the queue it serves).
--
-- How this works: the sweeper's idle scan (QueueStore.scan_idle) runs this now and then on
-- every listed queue. The first look that finds the queue unused marks meta `idle_since`
-- (now) and `idle_seq` (its id counter). A look that finds it in use clears the marks, and
-- one that finds the counter moved (messages came and went between two looks) starts the
-- wait again. Once the queue has been unused for `idle_ms` with the counter unchanged, every
-- key of it but the counter is deleted — meta with its `listed` mark too — and the caller
-- drops it from the registry, then runs relist.lua in case an add came in between.
-- KEYS: the queue's keys, then its dead-letter queue's keys (see common.lua), then the meta
--   of the queue this one is the dead-letter queue of (its own meta when it is not one).
-- ARGV: idle_ms
-- Returns: 1 when the queue was forgotten (the caller drops it from the registry), else 0.
local idle_ms = tonumber(ARGV[1])
local now = now_ms()
sweep(now)
if in_use(now, KEYS[2 * DEAD + 1]) then
  redis.call('HDEL', K_META, 'idle_since', 'idle_seq')
  return 0
end
local seq = redis.call('GET', K_SEQ) or '0'
local since, seen = unpack(redis.call('HMGET', K_META, 'idle_since', 'idle_seq'))
if not since or seen ~= seq then
  redis.call('HSET', K_META, 'idle_since', now, 'idle_seq', seq)
  return 0
end
if now - tonumber(since) < idle_ms then return 0 end
forget_queue(0)
return 1
