-- putback.lua: return taken messages to the front of the queue, as they were (used when a
-- long-polling request went away between the take and its answer).
-- KEYS: the queue's keys (see common.lua).
-- ARGV: id1, value1, id2, value2, ... oldest first
-- Returns: the number of messages put back.
for i = #ARGV - 1, 1, -2 do
  redis.call('HSET', K_VALS, ARGV[i], ARGV[i + 1])
  redis.call('RPUSH', K_READY, ARGV[i])
end
wake()
return #ARGV / 2
