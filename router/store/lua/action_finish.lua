-- End a claim on an action: `done` (kept `keep` seconds so a replay is known) or `retry`
-- at `next_at`. Nothing unless the claim's token still holds it. Returns 1 when applied.
-- ARGV: prefix, id, token, mode, next_at, keep (seconds).
local P, id, token, mode, next_at, keep =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local key = P .. 'act:' .. id
if redis.call('HGET', key, 'token') ~= token then return 0 end
if mode == 'done' then
  redis.call('HSET', key, 'token', '', 'done', 1)
  redis.call('EXPIRE', key, keep)
  redis.call('ZREM', P .. 'act:due', id)
else
  redis.call('HSET', key, 'token', '')
  redis.call('HINCRBY', key, 'attempts', 1)
  redis.call('ZADD', P .. 'act:due', next_at, id)
end
return 1
