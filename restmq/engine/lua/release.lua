-- release.lua: a consumer went away holding roundrobin messages it was never sent; put them
-- back at the front of the queue (oldest frontmost) and wake the queue's daemons.
-- KEYS: the queue's keys (see common.lua).
-- ARGV: member, id...
-- Returns: the number of messages returned.
local member = ARGV[1]
local ids = {}
for i = 2, #ARGV do
  if redis.call('HGET', K_LEASES, ARGV[i]) == member then ids[#ids + 1] = ARGV[i] end
end
table.sort(ids, by_id_desc)
for _, id in ipairs(ids) do
  redis.call('ZREM', K_LEASED, id)
  redis.call('HDEL', K_LEASES, id)
  redis.call('RPUSH', K_READY, id)
end
if #ids > 0 then wake() end
return #ids
