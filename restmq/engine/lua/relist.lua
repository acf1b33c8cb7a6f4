-- relist.lua: a queue was just dropped from the registry (forgotten by idle.lua, or an unused
-- dead-letter queue purged with its queue); must it come back? Something may have arrived
-- between the script that forgot it and the SREM: a message, a consumer, a setting.
-- KEYS: as idle.lua. ARGV: none.
-- Returns: 1 when the queue is in use — its meta `listed` mark is set again and the caller
--   adds it back to the registry — else 0.
if not in_use(now_ms(), KEYS[2 * DEAD + 1]) then return 0 end
redis.call('HSET', K_META, 'listed', 1)
return 1
