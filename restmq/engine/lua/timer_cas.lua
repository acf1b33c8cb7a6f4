-- timer_cas.lua: move a queue's timer from the score the sweeper saw to the next due time,
-- unless an add has lowered it meanwhile (then the lower score stays and is swept soon).
-- KEYS[1]: the timers zset
-- ARGV: queue, seen_score, next_due_ms (-1 = nothing pending: remove the timer)
-- Returns: 1 when the timer was updated, else 0.
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if current and tonumber(current) ~= tonumber(ARGV[2]) then return 0 end
if tonumber(ARGV[3]) < 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
