-- Give a claim back for another try at next_at, counting an attempt unless `counted` is
-- 0 (a hold, not a failure); nothing if the lease is no longer the claim's.
-- ARGV: prefix, gid, token, next_at, error, now, counted (0/1), timeline entries (JSON
-- [[id, entry], ...]), ids...
local P, gid, token, next_at, err, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local counted = tonumber(ARGV[7])
local lease = P .. 'lease:' .. gid
if redis.call('GET', lease) ~= token then return 0 end
for _, pair in ipairs(cjson.decode(ARGV[8])) do
  redis.call('RPUSH', P .. 'tl:' .. pair[1], pair[2])
end
local claimed = {}
for k = 9, #ARGV do
  local nkey = P .. 'n:' .. ARGV[k]
  if redis.call('HGET', nkey, 'state') == 'pending' then
    if counted > 0 then redis.call('HINCRBY', nkey, 'attempts', 1) end
    if err ~= '' then redis.call('HSET', nkey, 'last_error', err) end
    redis.call('HSET', nkey, 'next_attempt_at', next_at, 'updated_at', now)
    claimed[ARGV[k]] = true
  end
end
redis.call('DEL', lease)
-- Only the claimed notifications wait for next_at; newer ones are due by their own holds.
requeue(P, gid, claimed, next_at)
return 1
