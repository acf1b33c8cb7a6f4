-- leases.lua: prepended after common.lua to the scripts that settle leases (ack, extend,
-- ack_many, nack_many), so a batch runs the same per-entry steps as a single command.
--
-- A settlement's status, as restmq.engine.store reads it:
--    1 the receipt holds the message's lease (done),
--    0 no such message (taken, acknowledged, deleted, expired, purged),
--   -1 a wrong or expired receipt: the message is leased to another receipt, or it was leased
--      before and is not any more (its lease ran out or it was nacked),
--   -2 the message was never leased: it is waiting or delayed and was never delivered.

local function lease_status(id, receipt)
  local check = lease_check(id, receipt)
  if check ~= -1 or redis.call('HEXISTS', K_LEASES, id) == 1 then return check end
  if tonumber(redis.call('HGET', K_DELIV, id) or '0') > 0 then return -1 end
  return -2
end

-- Acknowledge one lease: the message is deleted. Returns its status.
local function ack_one(id, receipt)
  local status = lease_status(id, receipt)
  if status == 1 then forget(id) end
  return status
end
