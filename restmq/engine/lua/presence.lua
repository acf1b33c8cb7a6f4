-- presence.lua: register, refresh or remove streaming consumers of a queue.
-- KEYS: the queue's keys (see common.lua).
-- ARGV: deadline_ms, credits (for new consumers), mode ('join' | 'refresh' | 'leave'), member...
--   join: add the members with full credits, wake the queue's daemons;
--   refresh: push the deadline of members (re-adding one that a purge or a missed heartbeat
--     removed, with full credits);
--   leave: remove the members.
-- Returns: the number of members touched.
local deadline, credits, mode = ARGV[1], ARGV[2], ARGV[3]
local touched = 0
for i = 4, #ARGV do
  local member = ARGV[i]
  if mode == 'join' then
    redis.call('HSET', K_CONSUMERS, member, deadline)
    redis.call('HSET', K_CREDITS, member, credits)
    touched = touched + 1
  elseif mode == 'refresh' then
    redis.call('HSET', K_CONSUMERS, member, deadline)
    redis.call('HSETNX', K_CREDITS, member, credits)
    touched = touched + 1
  else
    touched = touched + redis.call('HDEL', K_CONSUMERS, member)
    redis.call('HDEL', K_CREDITS, member)
  end
end
if mode == 'join' then redis.call('PUBLISH', CHANNEL, 'w') end
return touched
