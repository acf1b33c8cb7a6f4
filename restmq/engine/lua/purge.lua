-- purge.lua: empty a queue whole — its messages, leases, soft-get counts, history, presence,
-- policy, status and `listed` mark (meta) — but keep its id counter: its keys keep counting,
-- so a late del or ack of a key from before the purge never hits a newer message (SPEC §3.2,
-- §4). Its dead-letter queue goes with it when that one is unused (no message, consumer,
-- poller or setting; its counter stays too); one that holds messages stays.
-- KEYS: the queue's keys, then its dead-letter queue's keys (see common.lua).
-- ARGV: none. Publishes 'p' on the queue's channel: every daemon closes its consumers.
-- Returns: {existed (0/1), number of messages removed, dead_gone}: dead_gone is 1 when the
--   dead-letter queue was emptied with it (the caller drops it from the registry), else 0.
local count = redis.call('HLEN', K_VALS)
local existed = redis.call('EXISTS', unpack(KEYS, 2, DEAD))
forget_queue(0)
local dead_gone = 0
if not IS_DEAD and unused(DEAD, true, now_ms()) then
  forget_queue(DEAD)
  dead_gone = 1
end
redis.call('PUBLISH', CHANNEL, 'p')
return {existed > 0 and 1 or 0, count, dead_gone}
