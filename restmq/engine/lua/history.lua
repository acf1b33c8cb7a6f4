-- history.lua: the broadcast messages after a given id still in the history window.
-- KEYS: the queue's keys (see common.lua).
-- ARGV: after_id, max_age_ms
-- Returns: a flat list id1, value1, id2, value2, ... oldest first.
local after, max_age = tonumber(ARGV[1]), tonumber(ARGV[2])
local oldest = now_ms() - max_age
local entries = redis.call('LRANGE', K_HISTORY, 0, -1)
local out = {}
for i = #entries, 1, -1 do
  local id, ms, value = string.match(entries[i], '^(%d+)\t(%d+)\t(.*)$')
  if id and tonumber(id) > after and tonumber(ms) >= oldest then
    out[#out + 1] = id
    out[#out + 1] = value
  end
end
return out
