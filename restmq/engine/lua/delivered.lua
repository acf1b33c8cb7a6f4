-- delivered.lua: a daemon wrote messages to its consumers; settle leases and return credits.
-- KEYS: the queue's keys (see common.lua).
-- ARGV: max_credits, then pairs of (member, n), then '--', then pairs of (member, id):
--   each (member, n) gives n credits back to a still-registered consumer, never above
--   max_credits (a consumer that joined while a broadcast was in flight got it uncharged);
--   each (member, id) deletes a roundrobin message whose lease that consumer still holds.
-- Returns: the number of roundrobin messages settled.
local max_credits = tonumber(ARGV[1])
local i, settled = 2, 0
while ARGV[i] ~= '--' do
  if redis.call('HEXISTS', K_CONSUMERS, ARGV[i]) == 1 then
    local now = redis.call('HINCRBY', K_CREDITS, ARGV[i], tonumber(ARGV[i + 1]))
    if now > max_credits then redis.call('HSET', K_CREDITS, ARGV[i], max_credits) end
  end
  i = i + 2
end
i = i + 1
while i < #ARGV do
  local member, id = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', K_LEASES, id) == member then
    forget(id)
    settled = settled + 1
  end
  i = i + 2
end
return settled
