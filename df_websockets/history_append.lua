-- Append one browser message to a topic group's history and return the
-- message with its position (docs/recovery.md). The only copy: Python
-- (df_websockets.history) runs it, and passes its text to the C layer.
-- KEYS[1]: the sorted set "<prefix>:hist:<group>" (score: offset, member:
--          "<unix ms>|<final JSON>")
-- KEYS[2]: the hash "<prefix>:hist:<group>:m" (epoch, seq)
-- ARGV: epoch candidate, message JSON (an object), group, size, ttl, now ms
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  -- a new history: messages left from an older epoch would be misread
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch)
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
