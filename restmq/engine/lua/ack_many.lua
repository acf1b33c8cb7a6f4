-- ack_many.lua: acknowledge many leases of one queue at once (SPEC §4 batches); each entry is
-- settled on its own, exactly as ack.lua would, in the order given.
-- KEYS: the queue's keys (see common.lua).
-- ARGV: id1, receipt1, id2, receipt2, ...
-- Returns: {status1, status2, ...}, the statuses of leases.lua (1 acknowledged).
local out = {}
for i = 1, #ARGV, 2 do
  out[#out + 1] = ack_one(ARGV[i], ARGV[i + 1])
end
return out
