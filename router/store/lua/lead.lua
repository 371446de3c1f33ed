-- Take or renew the role `purpose` for `me` until `held_until`, unless another holder's
-- term lasts beyond `now`. Returns 1 when `me` holds it. ARGV: prefix, purpose, me, now,
-- held until, key TTL.
local P, purpose, me, now, held_until, ttl =
  ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local key = P .. 'lead:' .. purpose
local current = redis.call('HMGET', key, 'holder', 'until')
if current[1] and current[1] ~= me and tonumber(current[2]) > now then return 0 end
redis.call('HSET', key, 'holder', me, 'until', held_until)
redis.call('EXPIRE', key, ttl)
return 1
