-- Claims this process will not finish (shutdown): ready for another replica at once.
-- ARGV: prefix, then gid, token pairs.
local P, given = ARGV[1], 0
for k = 2, #ARGV, 2 do
  local gid, token = ARGV[k], ARGV[k + 1]
  local lease = P .. 'lease:' .. gid
  if redis.call('GET', lease) == token then
    redis.call('DEL', lease)
    requeue(P, gid, nil, nil)
    given = given + 1
  end
end
return given
