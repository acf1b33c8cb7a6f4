-- nack_many.lua: give many leased messages of one queue back at once (SPEC §4 batches); also
-- the single nack, as a batch of one. Each entry whose receipt holds its lease is
--   dead-lettered (bury, common.lua) when its deliveries reached the queue's max_deliveries,
--   delayed when it carries a delay, or else
--   requeued at the front of the queue. The requeued messages of one call go back oldest
--   frontmost (as expired leases do), whatever the order of the entries; one wake-up for all.
-- KEYS: the queue's keys, then its dead-letter queue's keys (see common.lua).
-- ARGV: id1, receipt1, delay_ms1, id2, receipt2, delay_ms2, ...
-- Returns: {first_due_ms, status1, status2, ...}: status 1 requeued, 2 delayed, 3
-- dead-lettered, or a failure status of leases.lua (0, -1, -2: nothing changed for that
-- entry); first_due_ms is the earliest due time of the delayed entries, or -1.
local max = max_deliveries()

local function nack_one(id, receipt, delay)
  local status = lease_status(id, receipt)
  if status ~= 1 then return status, -1 end
  redis.call('ZREM', K_LEASED, id)
  redis.call('HDEL', K_LEASES, id)
  if max > 0 and tonumber(redis.call('HGET', K_DELIV, id) or '0') >= max then
    bury(id)
    return 3, -1
  end
  if delay > 0 then
    local due = now_ms() + delay
    redis.call('ZADD', K_DELAYED, due, id)
    return 2, due
  end
  return 1, -1
end

local out, requeued, first_due = {-1}, {}, -1
for i = 1, #ARGV, 3 do
  local status, due = nack_one(ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]))
  if status == 1 then requeued[#requeued + 1] = ARGV[i] end
  if due >= 0 and (first_due < 0 or due < first_due) then first_due = due end
  out[#out + 1] = status
end
table.sort(requeued, by_id_desc)
for _, id in ipairs(requeued) do redis.call('RPUSH', K_READY, id) end
if #requeued > 0 then wake() end
out[1] = first_due
return out
