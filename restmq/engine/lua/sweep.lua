-- sweep.lua: expire messages, promote due delayed ones, requeue expired leases.
-- KEYS: the queue's keys, then its dead-letter queue's keys (see common.lua).
-- ARGV: none
-- Returns: {number of entries handled, next_due_ms (-1 when nothing is pending)}
local handled = sweep(now_ms())
return {handled, next_due()}
