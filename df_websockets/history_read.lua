-- Read what a window missed in a topic group's history (docs/recovery.md).
-- The only copy: Python (df_websockets.history) and the C server (passed
-- its text by Python) run it.
-- KEYS[1]: the sorted set "<prefix>:hist:<group>", KEYS[2]: its meta hash
-- ARGV: epoch, offset, max entries, now ms, ttl (seconds)
-- Returns {epoch or nil, seq or nil, member...}: the members whose offset is
-- above ARGV[2] and whose time is within the TTL, in offset order (none when
-- the epoch is not the history's); {nil, nil} when another server wrote it.
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'seq', 'replid')
local replid = string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)') or ''
if meta[1] and meta[3] ~= replid then
  -- written by another server (this one was restarted or promoted since):
  -- its last messages may be missing, so no position in it is trusted (the
  -- next append starts a new epoch; history_append.lua says why)
  return {false, false}
end
local out = {meta[1], meta[2]}
if not meta[1] or meta[1] ~= ARGV[1] then
  return out
end
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf', 'LIMIT', 0, tonumber(ARGV[3]))
local oldest = tonumber(ARGV[4]) - 1000 * tonumber(ARGV[5])
for _, m in ipairs(items) do
  local t = tonumber(string.match(m, '^(%d+)|'))
  if t and t >= oldest then
    out[#out + 1] = m
  end
end
return out
