-- common.lua: prepended to every per-queue script by the loader.
--
-- KEYS[1..14] are the queue's keys in restmq.keys.QUEUE_KEY_SUFFIXES order, then the keys of
-- its dead-letter queue as KEYS[15..28] (DEAD + offset). A dead-letter queue is terminal: it
-- gets its own keys there again (IS_DEAD), and no max_deliveries applies in it.
-- Message ids are the integers of the per-queue counter; a message's value lives in the
-- `vals` hash, and its id is in exactly one of `ready` (list), `delayed` (zset) or `leased`
-- (zset). TTLs are logical (the `exp` zset), so a value and its reference always vanish
-- together, in one script.

local K_SEQ, K_READY, K_VALS, K_REFS, K_EXP = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local K_DELAYED, K_LEASED, K_LEASES, K_DELIV = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local K_META, K_HISTORY, K_CONSUMERS, K_CREDITS = KEYS[10], KEYS[11], KEYS[12], KEYS[13]
local K_POLLERS = KEYS[14]
local DEAD = 14
local SWEEP_LIMIT = 100
-- ARGV[1] is always the queue's pub/sub channel; it is removed so scripts see their own ARGV.
local CHANNEL = table.remove(ARGV, 1)
local IS_DEAD = KEYS[1] == KEYS[DEAD + 1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Remove every trace of a message but its place in `ready` (callers handle that).
local function forget(id)
  redis.call('HDEL', K_VALS, id)
  redis.call('HDEL', K_REFS, id)
  redis.call('HDEL', K_LEASES, id)
  redis.call('HDEL', K_DELIV, id)
  redis.call('ZREM', K_EXP, id)
  redis.call('ZREM', K_DELAYED, id)
  redis.call('ZREM', K_LEASED, id)
end

local function expire_messages(now)
  local ids = redis.call('ZRANGEBYSCORE', K_EXP, '-inf', now, 'LIMIT', 0, SWEEP_LIMIT)
  for _, id in ipairs(ids) do
    redis.call('LREM', K_READY, -1, id)
    forget(id)
  end
  return #ids
end

-- The due entries of a zset (scores <= now), about SWEEP_LIMIT at a time, with their scores.
-- A batch never splits the entries that share its last score: messages due together (a
-- delayed batch) or leases expiring together (a reserve with count) are handled together,
-- so their order among themselves can be kept.
local function due_batch(key, now)
  local flat = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'WITHSCORES',
    'LIMIT', 0, SWEEP_LIMIT)
  if #flat == 2 * SWEEP_LIMIT then
    flat = redis.call('ZRANGEBYSCORE', key, '-inf', flat[#flat], 'WITHSCORES')
  end
  local ids, scores = {}, {}
  for i = 1, #flat, 2 do
    ids[#ids + 1] = flat[i]
    scores[flat[i]] = tonumber(flat[i + 1])
  end
  return ids, scores
end

-- Due delayed messages join the newest end of the queue, in order of due time; those due at
-- the same time in the order they were added (the zset itself orders ties as strings).
local function promote_delayed(now)
  local ids, due = due_batch(K_DELAYED, now)
  table.sort(ids, function(a, b)
    if due[a] ~= due[b] then return due[a] < due[b] end
    return tonumber(a) < tonumber(b)
  end)
  for _, id in ipairs(ids) do
    redis.call('ZREM', K_DELAYED, id)
    redis.call('LPUSH', K_READY, id)
  end
  return #ids
end

local function is_expired(id, now)
  local expiry = redis.call('ZSCORE', K_EXP, id)
  return expiry and tonumber(expiry) <= now
end

-- Pop the oldest waiting message that still has a value and has not expired (a sweep handles
-- a bounded number of expirations; this covers whatever it left). Returns id, value or nil.
local function pop_live(now)
  while true do
    local id = redis.call('RPOP', K_READY)
    if not id then return nil end
    local value = redis.call('HGET', K_VALS, id)
    if value and not is_expired(id, now) then return id, value end
    forget(id)
  end
end

-- The oldest waiting live message without removing it (expired ones on the way are removed).
local function oldest_live(now)
  while true do
    local id = redis.call('LINDEX', K_READY, -1)
    if not id then return nil end
    local value = redis.call('HGET', K_VALS, id)
    if value and not is_expired(id, now) then return id, value end
    redis.call('RPOP', K_READY)
    forget(id)
  end
end

local function by_id_desc(a, b) return tonumber(a) > tonumber(b) end

-- How many deliveries a message of this queue gets before it is dead-lettered (0: no
-- limit). None in a dead-letter queue: a message that fails there again stays there.
local function max_deliveries()
  if IS_DEAD then return 0 end
  return tonumber(redis.call('HGET', K_META, 'max_deliveries') or '0')
end

-- A message whose deliveries reached max_deliveries moves to the dead-letter queue
-- with its delivery count; it is a new message there, numbered by its own counter. In a
-- dead-letter queue (terminal, see max_deliveries) it stays, back at the front.
local function bury(id)
  if IS_DEAD then
    redis.call('RPUSH', K_READY, id)
    return
  end
  local value = redis.call('HGET', K_VALS, id)
  local deliveries = redis.call('HGET', K_DELIV, id) or '0'
  forget(id)
  if not value then return end
  local dead_id = redis.call('INCR', KEYS[DEAD + 1])
  redis.call('HSET', KEYS[DEAD + 3], dead_id, value)
  redis.call('HSET', KEYS[DEAD + 9], dead_id, deliveries)
  redis.call('LPUSH', KEYS[DEAD + 2], dead_id)
end

-- Expired leases go back to the front of the queue, oldest message frontmost.
local function requeue_expired_leases(now)
  local ids = due_batch(K_LEASED, now)
  if #ids == 0 then return 0 end
  table.sort(ids, by_id_desc)
  local max = max_deliveries()
  for _, id in ipairs(ids) do
    redis.call('ZREM', K_LEASED, id)
    redis.call('HDEL', K_LEASES, id)
    if max > 0 and tonumber(redis.call('HGET', K_DELIV, id) or '0') >= max then
      bury(id)
    else
      redis.call('RPUSH', K_READY, id)
    end
  end
  return #ids
end

-- Tell the daemons with streaming consumers or long-polling requests of this queue that
-- messages are waiting.
local function wake()
  if redis.call('HLEN', K_CONSUMERS) > 0 or redis.call('HLEN', K_POLLERS) > 0 then
    redis.call('PUBLISH', CHANNEL, 'w')
  end
end

-- A lease check: 1 when `holder` holds the message's lease, 0 when the message is gone,
-- -1 when it exists but the lease is someone else's (or there is none).
local function lease_check(id, holder)
  if redis.call('HEXISTS', K_VALS, id) == 0 then return 0 end
  if redis.call('HGET', K_LEASES, id) ~= holder then return -1 end
  return 1
end

local function sweep(now)
  expire_messages(now)
  local moved = promote_delayed(now) + requeue_expired_leases(now)
  if moved > 0 then wake() end
  return moved
end

-- The live streaming consumers, sorted by name; the entries of dead daemons are dropped.
local function live_consumers(now)
  local flat = redis.call('HGETALL', K_CONSUMERS)
  local live = {}
  for i = 1, #flat, 2 do
    if tonumber(flat[i + 1]) >= now then
      live[#live + 1] = flat[i]
    else
      redis.call('HDEL', K_CONSUMERS, flat[i])
      redis.call('HDEL', K_CREDITS, flat[i])
    end
  end
  table.sort(live)
  return live
end

-- The earliest time at which a sweep of this queue has work to do, or -1.
local function next_due()
  local best = -1
  for _, key in ipairs({K_EXP, K_DELAYED, K_LEASED}) do
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if first[2] and (best < 0 or tonumber(first[2]) < best) then best = tonumber(first[2]) end
  end
  return best
end

-- Idle queues and purges (idle.lua, relist.lua, purge.lua). `base` is 0 for the queue's own
-- keys and DEAD for its dead-letter queue's.

-- Whether the queue at `base` holds a message in any state: waiting, delayed or leased.
local function holds_messages(base)
  return redis.call('HLEN', KEYS[base + 3]) > 0 or redis.call('LLEN', KEYS[base + 2]) > 0
    or redis.call('ZCARD', KEYS[base + 6]) > 0 or redis.call('ZCARD', KEYS[base + 7]) > 0
end

-- Whether a presence hash (member -> deadline ms: consumers, pollers) has a live member.
local function has_live(key, now)
  local flat = redis.call('HGETALL', key)
  for i = 2, #flat, 2 do
    if tonumber(flat[i]) >= now then return true end
  end
  return false
end

local function has_max_deliveries(meta)
  return tonumber(redis.call('HGET', meta, 'max_deliveries') or '0') > 0
end

-- Whether a meta hash holds a setting: a stopped status, the roundrobin policy, or (unless
-- the queue is a dead-letter queue, where it means nothing) max_deliveries. Its other fields
-- (`listed`, `rr`, the idle marks) are bookkeeping, not settings.
local function has_settings(meta, terminal)
  local status, policy = unpack(redis.call('HMGET', meta, 'status', 'policy'))
  if status == 'stopped' or policy == 'roundrobin' then return true end
  return not terminal and has_max_deliveries(meta)
end

-- Whether the queue at `base` is unused: no message, no live consumer or long poller, and
-- nothing set.
local function unused(base, terminal, now)
  return not holds_messages(base) and not has_live(KEYS[base + 12], now)
    and not has_live(KEYS[base + 14], now) and not has_settings(KEYS[base + 10], terminal)
end

-- Whether this queue must stay listed: it is not unused, or it is a queue with dead letters,
-- or it is the dead-letter queue of a queue with max_deliveries (messages may arrive at any
-- time: `parent_meta` is that queue's meta).
local function in_use(now, parent_meta)
  if not unused(0, IS_DEAD, now) then return true end
  if IS_DEAD then return has_max_deliveries(parent_meta) end
  return holds_messages(DEAD)
end

-- Delete every key of the queue at `base` but its id counter (KEYS[base + 1]): its keys
-- keep counting, so a late del or ack of an old key can never hit a newer message.
local function forget_queue(base)
  redis.call('DEL', unpack(KEYS, base + 2, base + DEAD))
end
