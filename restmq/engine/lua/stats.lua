-- stats.lua: the counts of one queue, after a sweep.
-- KEYS: the queue's keys, then its dead-letter queue's keys (see common.lua).
-- ARGV: none
-- Returns: {len, leased, delayed, status, policy, dead, next_due_ms, live consumers}
local now = now_ms()
sweep(now)
return {
  redis.call('LLEN', K_READY),
  redis.call('ZCARD', K_LEASED),
  redis.call('ZCARD', K_DELAYED),
  redis.call('HGET', K_META, 'status') or 'started',
  redis.call('HGET', K_META, 'policy') or 'broadcast',
  redis.call('LLEN', KEYS[DEAD + 2]),
  next_due(),
  #live_consumers(now),
}
