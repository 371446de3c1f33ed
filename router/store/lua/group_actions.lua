-- Compare-and-set of what was done to a group: write `body` as version `expected + 1`
-- only while the stored version is `expected` (0: none). Returns 1 when written.
-- ARGV: prefix, gid, expected version, body, key TTL (seconds).
local P, gid, expected, body, ttl =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local key = P .. 'ga:' .. gid
local current = tonumber(redis.call('HGET', key, 'v') or '0')
if current ~= expected then return 0 end
redis.call('HSET', key, 'v', expected + 1, 'body', body)
redis.call('EXPIRE', key, ttl)
return 1
