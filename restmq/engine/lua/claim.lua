-- claim.lua: take waiting messages out for the queue's streaming consumers, on every daemon.
--
-- How this works: each live consumer (a field of `consumers`, "<daemon>/<n>") has credits —
-- how many more messages it may be sent before it confirms some. While the queue is started:
--   broadcast: k = the smallest credit of all live consumers (at most `batch`); k messages
--     leave the queue, go into the history window and are published once on the queue's
--     channel as "b<TAB>id<TAB>value"; every daemon with consumers of the queue is
--     subscribed and writes them to all its consumers. Every consumer's credit drops by k.
--   roundrobin: messages go one by one to the next consumer (rotating over all live
--     consumers, sorted by name, from the position kept in meta `rr`) that has credit; each
--     is leased to that consumer until `lease_ms` and published on its daemon's channel as
--     "r<TAB>queue<TAB>consumer<TAB>id<TAB>value". If the daemon dies, the lease expires and
--     the message returns to the front of the queue.
-- KEYS: the queue's keys, then its dead-letter queue's keys (see common.lua).
-- ARGV: queue, daemon channel prefix, batch, lease_ms, history_size
-- Returns: the number of messages claimed.
local queue, to_prefix = ARGV[1], ARGV[2]
local batch, lease_ms, history_size = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
sweep(now)
if redis.call('HGET', K_META, 'status') == 'stopped' then return 0 end
if redis.call('LLEN', K_READY) == 0 then return 0 end  -- before the O(consumers) part
local live = live_consumers(now)
if #live == 0 then return 0 end

local function pop() return pop_live(now) end

local function broadcast()
  local k = batch
  for _, member in ipairs(live) do
    k = math.min(k, tonumber(redis.call('HGET', K_CREDITS, member) or '0'))
  end
  local sent = 0
  while sent < k do
    local id, value = pop()
    if not id then break end
    forget(id)
    redis.call('LPUSH', K_HISTORY, id .. '\t' .. now .. '\t' .. value)
    redis.call('PUBLISH', CHANNEL, 'b\t' .. id .. '\t' .. value)
    sent = sent + 1
  end
  if sent == 0 then return 0 end
  redis.call('LTRIM', K_HISTORY, 0, history_size - 1)
  for _, member in ipairs(live) do redis.call('HINCRBY', K_CREDITS, member, -sent) end
  return sent
end

-- The index (1-based) of the next consumer with credit at or after `from`, or nil.
local function next_with_credit(from)
  for step = 0, #live - 1 do
    local i = (from + step - 1) % #live + 1
    if tonumber(redis.call('HGET', K_CREDITS, live[i]) or '0') > 0 then return i end
  end
  return nil
end

local function roundrobin()
  local position = tonumber(redis.call('HGET', K_META, 'rr') or '0')
  local sent = 0
  while sent < batch do
    local i = next_with_credit(position % #live + 1)
    if not i then break end
    local id, value = pop()
    if not id then break end
    local member = live[i]
    local daemon = string.match(member, '^(.*)/')
    redis.call('HINCRBY', K_CREDITS, member, -1)
    redis.call('ZADD', K_LEASED, now + lease_ms, id)
    redis.call('HSET', K_LEASES, id, member)
    redis.call('PUBLISH', to_prefix .. daemon,
      'r\t' .. queue .. '\t' .. member .. '\t' .. id .. '\t' .. value)
    position = i
    sent = sent + 1
  end
  redis.call('HSET', K_META, 'rr', position)
  return sent
end

if redis.call('HGET', K_META, 'policy') == 'roundrobin' then return roundrobin() end
return broadcast()
