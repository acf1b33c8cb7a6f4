-- putback.lua: undo a take — return taken messages to the front of the queue exactly as they
-- were: same id and value, soft-get count, delivery count and TTL end (used when the request
-- that took them went away before its answer: a long poll whose client left).
-- KEYS: the queue's keys (see common.lua).
-- ARGV: five per message, oldest first: id, value, refcount, expiry_ms (-1: no TTL),
--   deliveries (as take.lua returned them)
-- Returns: {the number put back, the earliest TTL end among them (-1: none)}; a message whose
-- TTL ended while it was out is not put back (it has expired).
local now = now_ms()
local back, earliest = 0, -1
for i = #ARGV - 4, 1, -5 do
  local id, expiry = ARGV[i], tonumber(ARGV[i + 3])
  if expiry < 0 or expiry > now then
    redis.call('HSET', K_VALS, id, ARGV[i + 1])
    if tonumber(ARGV[i + 2]) > 0 then redis.call('HSET', K_REFS, id, ARGV[i + 2]) end
    if tonumber(ARGV[i + 4]) > 0 then redis.call('HSET', K_DELIV, id, ARGV[i + 4]) end
    if expiry >= 0 then
      redis.call('ZADD', K_EXP, expiry, id)
      if earliest < 0 or expiry < earliest then earliest = expiry end
    end
    redis.call('RPUSH', K_READY, id)
    back = back + 1
  end
end
if back > 0 then wake() end
return {back, earliest}
