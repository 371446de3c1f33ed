-- Give a claim back for a retry at next_at, counting the attempt; nothing if the lease is
-- no longer the claim's. ARGV: prefix, gid, token, next_at, error, now, ids...
local P, gid, token, next_at, err, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local lease = P .. 'lease:' .. gid
if redis.call('GET', lease) ~= token then return 0 end
local held = 0
for k = 7, #ARGV do
  local nkey = P .. 'n:' .. ARGV[k]
  if redis.call('HGET', nkey, 'state') == 'pending' then
    redis.call('HINCRBY', nkey, 'attempts', 1)
    redis.call('HSET', nkey, 'last_error', err, 'next_attempt_at', next_at, 'updated_at', now)
    held = held + 1
  end
end
redis.call('DEL', lease)
-- Only the claimed notifications wait for the retry; newer ones are due at once.
if redis.call('LLEN', P .. 'q:' .. gid) > held then
  requeue(P, gid, nil)
else
  requeue(P, gid, next_at)
end
return 1
