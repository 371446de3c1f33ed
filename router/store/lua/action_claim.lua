-- Take up to `limit` due actions, oldest first, each until `lease_until` (its due score).
-- Returns a flat list: id, body, attempts, token per action.
-- ARGV: prefix, now, limit, lease until, token base.
local P, now, limit, lease_until, base =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local ids = redis.call('ZRANGEBYSCORE', P .. 'act:due', '-inf', now, 'LIMIT', 0, limit)
local out = {}
for i, id in ipairs(ids) do
  local key = P .. 'act:' .. id
  local row = redis.call('HMGET', key, 'body', 'attempts')
  if row[1] then
    local token = base .. ':' .. i
    redis.call('HSET', key, 'token', token)
    redis.call('ZADD', P .. 'act:due', lease_until, id)
    table.insert(out, id)
    table.insert(out, row[1])
    table.insert(out, row[2])
    table.insert(out, token)
  else
    -- Its hash is gone (TTL): nothing left to do.
    redis.call('ZREM', P .. 'act:due', id)
  end
end
return out
