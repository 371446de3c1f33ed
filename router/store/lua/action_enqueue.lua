-- Record a click as due at `now` unless its id is known. Returns 1 when recorded.
-- ARGV: prefix, id, action JSON, now, key TTL (seconds).
local P, id, body, now, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local key = P .. 'act:' .. id
if redis.call('EXISTS', key) == 1 then return 0 end
redis.call('HSET', key, 'body', body, 'attempts', 0, 'token', '', 'done', 0)
redis.call('EXPIRE', key, ttl)
redis.call('ZADD', P .. 'act:due', now, id)
return 1
