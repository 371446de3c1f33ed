-- Extend the leases still held by their claims: each group is due again only when the new
-- lease ends. Returns the tokens renewed; a token missing was taken over or finished.
-- ARGV: prefix, lease end, lease key TTL, then gid, token pairs.
local P, lease_until, lease_ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local held = {}
for k = 4, #ARGV, 2 do
  local gid, token = ARGV[k], ARGV[k + 1]
  local lease = P .. 'lease:' .. gid
  if redis.call('GET', lease) == token then
    redis.call('ZADD', P .. 'due', lease_until, gid)
    redis.call('EXPIRE', lease, lease_ttl)
    held[#held + 1] = token
  end
end
return held
