-- Note alert episodes that ended, once across receivers. Per episode, returns -1 when it
-- was noted before (another receiver's record), else the end of the alert's episode
-- before it (0: none seen); the episode becomes the alert's last. ARGV: prefix, key TTL,
-- then fingerprint, starts_at, ends_at per episode.
local P, ttl = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 3 do
  local key = P .. 'ru:a:' .. ARGV[i]
  local last = redis.call('HMGET', key, 's', 'e')
  if last[1] == ARGV[i + 1] then
    out[#out + 1] = '-1'
  else
    out[#out + 1] = last[2] or '0'
    redis.call('HSET', key, 's', ARGV[i + 1], 'e', ARGV[i + 2])
    redis.call('EXPIRE', key, ttl)
  end
end
return out
