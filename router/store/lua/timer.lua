-- Durable timers of one kind: `P tm:<kind>` zset of keys by when each is due (a claimed
-- one: when its lease ends), `P tm:<kind>:b` hash key -> body, `P tm:<kind>:t` hash
-- key -> token of the claim holding it.
-- ARGV: prefix, op, kind, then per op:
--   set key due body replace -> 1 when armed
--   claim now limit lease_until token_base -> flat key, due, body, token per timer
--   finish key token due|'' body -> 1 when the claim held it
--   cancel key -> 1
local P, op, kind = ARGV[1], ARGV[2], ARGV[3]
local Z, B, T = P .. 'tm:' .. kind, P .. 'tm:' .. kind .. ':b', P .. 'tm:' .. kind .. ':t'
if op == 'set' then
  local key, due, body, replace = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  if replace ~= '1' and redis.call('ZSCORE', Z, key) then return 0 end
  redis.call('ZADD', Z, due, key)
  redis.call('HSET', B, key, body)
  redis.call('HDEL', T, key)
  return 1
elseif op == 'claim' then
  local now, limit, lease_until, base = ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
  local keys = redis.call('ZRANGEBYSCORE', Z, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  local out = {}
  for i = 1, #keys, 2 do
    local key = keys[i]
    local token = base .. ':' .. i
    redis.call('ZADD', Z, lease_until, key)
    redis.call('HSET', T, key, token)
    table.insert(out, key)
    table.insert(out, keys[i + 1])
    table.insert(out, redis.call('HGET', B, key) or '')
    table.insert(out, token)
  end
  return out
elseif op == 'finish' then
  local key, token, due, body = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  if redis.call('HGET', T, key) ~= token then return 0 end
  redis.call('HDEL', T, key)
  if due == '' then
    redis.call('ZREM', Z, key)
    redis.call('HDEL', B, key)
  else
    redis.call('ZADD', Z, due, key)
    redis.call('HSET', B, key, body)
  end
  return 1
elseif op == 'cancel' then
  local key = ARGV[4]
  redis.call('ZREM', Z, key)
  redis.call('HDEL', B, key)
  redis.call('HDEL', T, key)
  return 1
end
return redis.error_reply('timer: unknown op ' .. tostring(op))
