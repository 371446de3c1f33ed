-- Heartbeats: `P hbs` set of tracked names, `P hb:<name>` hash (since, last, missing,
-- labels). ARGV: prefix, op, then per op:
--   beat name at              last = max(last, at); tracked from `at` if new
--   track now name...         track exactly these names (new ones from `now`)
--   missing name since labels the verdict ("" since: not missing); only if tracked
local P, op = ARGV[1], ARGV[2]
if op == 'beat' then
  local name, at = ARGV[3], tonumber(ARGV[4])
  local key = P .. 'hb:' .. name
  redis.call('HSETNX', key, 'since', ARGV[4])
  local last = tonumber(redis.call('HGET', key, 'last'))
  if not last or at > last then redis.call('HSET', key, 'last', ARGV[4]) end
  redis.call('SADD', P .. 'hbs', name)
  return 1
elseif op == 'track' then
  local wanted = {}
  for i = 4, #ARGV do
    wanted[ARGV[i]] = true
    if redis.call('SADD', P .. 'hbs', ARGV[i]) == 1 then
      redis.call('HSETNX', P .. 'hb:' .. ARGV[i], 'since', ARGV[3])
    end
  end
  for _, name in ipairs(redis.call('SMEMBERS', P .. 'hbs')) do
    if not wanted[name] then
      redis.call('SREM', P .. 'hbs', name)
      redis.call('DEL', P .. 'hb:' .. name)
    end
  end
  return 1
elseif op == 'missing' then
  local name = ARGV[3]
  if redis.call('SISMEMBER', P .. 'hbs', name) == 0 then return 0 end
  local key = P .. 'hb:' .. name
  if ARGV[4] == '' then
    redis.call('HDEL', key, 'missing', 'labels')
  else
    redis.call('HSET', key, 'missing', ARGV[4], 'labels', ARGV[5])
  end
  return 1
end
return redis.error_reply('heartbeat: unknown op ' .. tostring(op))
