-- purge.lua: delete a queue whole — messages, leases, counters, policy and status.
-- KEYS: the queue's keys (see common.lua).
-- ARGV: none. Publishes 'p' on the queue's channel: every daemon closes its consumers.
-- Returns: {existed (0/1), number of messages removed}
local count = redis.call('HLEN', K_VALS)
local own = {unpack(KEYS, 1, DEAD)}
local existed = redis.call('EXISTS', unpack(own))
redis.call('DEL', unpack(own))
redis.call('PUBLISH', CHANNEL, 'p')
return {existed > 0 and 1 or 0, count}
