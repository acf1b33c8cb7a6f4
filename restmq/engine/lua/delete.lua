-- delete.lua: delete one message wherever it is (waiting, delayed or leased).
-- KEYS: the queue's keys (see common.lua).
-- ARGV: id
-- Returns: 1 when the message existed, else 0.
local id = ARGV[1]
if redis.call('HEXISTS', K_VALS, id) == 0 then return 0 end
if not redis.call('ZSCORE', K_LEASED, id) and not redis.call('ZSCORE', K_DELAYED, id) then
  redis.call('LREM', K_READY, -1, id)
end
forget(id)
return 1
