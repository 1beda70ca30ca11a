-- Append one browser message to a topic group's history and return the
-- message with its position (docs/recovery.md). The only copy: Python
-- (df_websockets.history) runs it, and passes its text to the C layer.
-- KEYS[1]: the sorted set "<prefix>:hist:<group>" (score: offset, member:
--          "<unix ms>|<final JSON>")
-- KEYS[2]: the hash "<prefix>:hist:<group>:m" (epoch, seq, replid: the
--          replication ID of the server that wrote it)
-- ARGV: epoch candidate, message JSON (an object), group, size, ttl, now ms
local replid = string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)') or ''
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'replid')
local epoch = meta[1]
if not epoch or meta[2] ~= replid then
  -- A new history, or one this server did not write itself: it was
  -- restarted, or it is a replica promoted by a failover, and the last
  -- messages its predecessor acknowledged may be missing here (not yet
  -- replicated, not yet on disk). Going on would replay a history with a
  -- silent gap and hand out the lost offsets again; a new epoch makes every
  -- older position fail recovery instead (recovery_failed: the page reloads).
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'replid', replid)
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local msg = string.gsub(ARGV[2], '%s+$', '')
local body = string.sub(msg, 1, -2)
local sep = ','
if string.match(body, '{%s*$') then
  sep = ''
end
local final = body .. sep .. '"topic":"' .. ARGV[3] .. '","pos":"' .. epoch .. '-' .. seq .. '"}'
redis.call('ZADD', KEYS[1], seq, ARGV[6] .. '|' .. final)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[4]) - 1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
redis.call('EXPIRE', KEYS[2], 86400)
return final
