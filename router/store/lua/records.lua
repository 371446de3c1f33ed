-- Shared by the scripts that write delivery records: the per-minute counts of records by
-- creation time and (state, reason), which `counts` sums for the console's counters.
local function stats_move(P, created, from, to, ttl)
  local minute = string.format('%d', math.floor(tonumber(created) / 60))
  local key = P .. 'stats:' .. minute
  if from and redis.call('HINCRBY', key, from, -1) <= 0 then
    -- A minute whose records all went leaves nothing behind.
    redis.call('HDEL', key, from)
    if redis.call('EXISTS', key) == 0 then redis.call('ZREM', P .. 'stats', minute) end
  end
  if to then
    redis.call('HINCRBY', key, to, 1)
    redis.call('ZADD', P .. 'stats', minute, minute)
    redis.call('EXPIRE', key, ttl)
    redis.call('EXPIRE', P .. 'stats', ttl)
  end
end
-- One record in one index of records by seq (newest first is by descending score).
local function index_add(key, seq, id, ttl)
  redis.call('ZADD', key, seq, id)
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
end
