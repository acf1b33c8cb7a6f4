-- ack.lua: delete a leased message, if the receipt still holds its lease.
-- KEYS: the queue's keys (see common.lua).
-- ARGV: id, receipt
-- Returns: 1 acknowledged, 0 no such message, -1 wrong or stale receipt (nothing changed).
local check = lease_check(ARGV[1], ARGV[2])
if check == 1 then forget(ARGV[1]) end
return check
