-- extend.lua: move a lease's deadline to now + timeout, if the receipt still holds it.
-- KEYS: the queue's keys (see common.lua).
-- ARGV: id, receipt, timeout_ms
-- Returns: {status, deadline_ms}: the status of leases.lua (1 extended, 0 no such message,
-- -1 wrong or expired receipt, -2 never leased); deadline_ms is -1 unless extended.
local check = lease_status(ARGV[1], ARGV[2])
if check ~= 1 then return {check, -1} end
local deadline = now_ms() + tonumber(ARGV[3])
redis.call('ZADD', K_LEASED, 'XX', deadline, ARGV[1])
return {1, deadline}
