-- purge.lua: delete a queue whole — messages, leases, counters, policy and status.
-- KEYS: the queue's keys (see common.lua).
-- ARGV: none
-- Returns: {existed (0/1), number of messages removed}
local count = redis.call('HLEN', K_VALS)
local existed = redis.call('EXISTS', unpack(KEYS))
redis.call('DEL', unpack(KEYS))
return {existed > 0 and 1 or 0, count}
