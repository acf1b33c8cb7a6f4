-- migrate_v1.lua: import one batch of a RestMQ 1.x queue's messages (`restmq migrate-v1`).
-- KEYS: the queue's keys, then its dead-letter queue's keys (see common.lua), then
--   KEYS[2 * DEAD + 1]: the queue's migration marker (restmq.keys.Keys.migrated_v1).
-- ARGV: upto      the highest 1.x id this batch looked at (moved or not);
--       counter   the 1.x counter `<q>:UUID` on the queue's last batch, else -1;
--       policy    '', 'broadcast' or 'roundrobin' (1.x `<q>:queuepolicy`; '' when absent);
--       status    '', 'started' or 'stopped' (1.x `queuestat::<q>`; '' when absent);
--       then per message, oldest first: id, ttl_ms (0 = none), soft-get count, value.
-- Returns: {moved, renumbered, already, first, next_due_ms}; `first` is 1 when this batch
--   was the queue's first ever (it applied the policy and status).
--
-- How this works. The marker holds the highest 1.x id already looked at; it is written by
-- the same script as the messages, so every batch is all-or-nothing and a re-run (or a run
-- after a crash between batches) skips what was moved and moves the rest. A message keeps
-- its 1.x number unless that number was already used here (at or below the counter `seq`),
-- in which case it takes the next one; `seq` ends at least at the 1.x counter, so new
-- messages never reuse a 1.x key. Messages join the newest end of the queue in 1.x order,
-- as if added now; a TTL is the time the 1.x value had left. The policy and status are
-- applied by the queue's first batch only, so a re-run never undoes a later change.
local K_MARKER = KEYS[2 * DEAD + 1]
local upto, counter = tonumber(ARGV[1]), tonumber(ARGV[2])
local policy, status = ARGV[3], ARGV[4]

local raw_marker = redis.call('GET', K_MARKER)
local marker = tonumber(raw_marker or '0')
local first = raw_marker == false
if first and policy ~= '' then redis.call('HSET', K_META, 'policy', policy) end
if first and status ~= '' then redis.call('HSET', K_META, 'status', status) end

local start = tonumber(redis.call('GET', K_SEQ) or '0')
local seq = start
local now = now_ms()
local ids = {}
local renumbered, already = 0, 0

-- The number a 1.x id gets here: its own when it is above every number used so far.
local function place(old)
  if tonumber(old) > seq and redis.call('HEXISTS', K_VALS, old) == 0 then
    seq = tonumber(old)
    return old
  end
  seq = seq + 1
  renumbered = renumbered + 1
  return string.format('%d', seq)
end

for i = 5, #ARGV, 4 do
  if tonumber(ARGV[i]) <= marker then
    already = already + 1
  else
    local id = place(ARGV[i])
    local ttl, refs = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    redis.call('HSET', K_VALS, id, ARGV[i + 3])
    if ttl > 0 then redis.call('ZADD', K_EXP, now + ttl, id) end
    if refs > 0 then redis.call('HSET', K_REFS, id, refs) end
    ids[#ids + 1] = id
  end
end

-- Lua's unpack() is limited to a few thousand values: push in slices.
for from = 1, #ids, 1000 do
  redis.call('LPUSH', K_READY, unpack(ids, from, math.min(from + 999, #ids)))
end
if #ids > 0 then wake() end
if counter > seq then seq = counter end
if seq ~= start then redis.call('SET', K_SEQ, string.format('%d', seq)) end
redis.call('SET', K_MARKER, string.format('%d', math.max(marker, upto)))
return {#ids, renumbered, already, first and 1 or 0, next_due()}
