-- nack.lua: give a leased message back — now (front of the queue) or after a delay — or,
-- when it has reached the queue's max_deliveries, move it to the dead-letter queue. In a
-- dead-letter queue it always comes back (terminal: there is no dead-letter queue of it), and
-- its delivery count keeps growing.
-- KEYS: the queue's keys, then its dead-letter queue's keys (see common.lua).
-- ARGV: id, receipt, delay_ms, undo ('1': the message never reached anyone — a long poll
--   whose client left — so its delivery is not counted and it is not dead-lettered)
-- Returns: {status, due_ms}: status 1 requeued, 2 delayed, 3 dead-lettered, 0 no such
-- message, -1 wrong or stale receipt (nothing changed); due_ms is -1 unless delayed.
local id, delay = ARGV[1], tonumber(ARGV[3])
local check = lease_check(id, ARGV[2])
if check ~= 1 then return {check, -1} end
redis.call('ZREM', K_LEASED, id)
redis.call('HDEL', K_LEASES, id)
if ARGV[4] == '1' then
  redis.call('HINCRBY', K_DELIV, id, -1)
  redis.call('RPUSH', K_READY, id)
  wake()
  return {1, -1}
end
local max = max_deliveries()
if max > 0 and tonumber(redis.call('HGET', K_DELIV, id) or '0') >= max then
  bury(id)
  return {3, -1}
end
if delay > 0 then
  local due = now_ms() + delay
  redis.call('ZADD', K_DELAYED, due, id)
  return {2, due}
end
redis.call('RPUSH', K_READY, id)
wake()
return {1, -1}
