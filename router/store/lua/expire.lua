-- Drop up to `batch` each of: log entries and alert states expired by `now`, deploys and
-- finished records older than their cut-off. Returns {how many went, whether any batch
-- was full (call again)}. ARGV: prefix, now, records before, deploys before, batch.
local P, now, records_before, deploys_before, batch =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local gone, full = 0, 0
local function due(key, upto)
  local items = redis.call('ZRANGEBYSCORE', key, '-inf', upto, 'LIMIT', 0, batch)
  if #items == batch then full = 1 end
  gone = gone + #items
  return items
end
for _, gid in ipairs(due(P .. 'nfx', now)) do
  redis.call('DEL', P .. 'nf:' .. gid)
  redis.call('ZREM', P .. 'nfx', gid)
  redis.call('ZREM', P .. 'nff', gid)
end
for _, fp in ipairs(due(P .. 'alerts:x', now)) do
  redis.call('HDEL', P .. 'alerts', fp)
  redis.call('ZREM', P .. 'alerts:x', fp)
end
for _, member in ipairs(due(P .. 'deploys:x', '(' .. deploys_before)) do
  local key = cjson.decode(member)
  redis.call('ZREM', P .. 'deploys:a:' .. key[1], member)
  redis.call('ZREM', P .. 'deploys:ns:' .. key[2], member)
  redis.call('HDEL', P .. 'deploys', member)
  redis.call('ZREM', P .. 'deploys:x', member)
end
for _, id in ipairs(due(P .. 'done', '(' .. records_before)) do
  local nkey = P .. 'n:' .. id
  local f = redis.call('HMGET', nkey, 'receiver', 'group_key', 'delivered_in', 'env',
    'severity', 'source', 'state', 'reason', 'created_at')
  if f[1] then
    redis.call('ZREM', P .. 'recs:r:' .. f[1], id)
    redis.call('ZREM', P .. 'recs:k:' .. f[2], id)
    if f[3] and f[3] ~= '' then redis.call('ZREM', P .. 'recs:in:' .. f[3], id) end
    if f[4] then
      redis.call('ZREM', P .. 'recs:e:' .. f[4], id)
      redis.call('ZREM', P .. 'recs:v:' .. f[5], id)
      redis.call('ZREM', P .. 'recs:s:' .. f[6], id)
    end
    redis.call('ZREM', P .. 'recs:st:' .. f[7], id)
    if f[8] and f[8] ~= '' then redis.call('ZREM', P .. 'recs:re:' .. f[8], id) end
    redis.call('ZREM', P .. 'recs:c', id)
    stats_move(P, f[9], f[7] .. '|' .. (f[8] or ''), nil, 0)
  end
  redis.call('DEL', nkey, P .. 'tl:' .. id)
  redis.call('ZREM', P .. 'recs', id)
  redis.call('ZREM', P .. 'done', id)
end
return {gone, full}
