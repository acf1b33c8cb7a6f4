-- get.lua: soft get — return the oldest waiting message, leave it, and count the get.
-- KEYS: the queue's keys, then its dead-letter queue's keys (see common.lua).
-- ARGV: none
-- Returns: {id, value, count} or nil when the queue is empty.
local now = now_ms()
sweep(now)
local id, value = oldest_live(now)
if not id then return nil end
local count = redis.call('HINCRBY', K_REFS, id, 1)
return {id, value, count}
