-- ack.lua: delete a leased message, if the receipt still holds its lease.
-- KEYS: the queue's keys (see common.lua).
-- ARGV: id, receipt
-- Returns: the status of leases.lua: 1 acknowledged, 0 no such message, -1 wrong or expired
-- receipt, -2 never leased (nothing changed unless 1).
return ack_one(ARGV[1], ARGV[2])
