-- Take up to `limit` groups that are ready, or due by `now`, each with the notification
-- log entry as of taking the lease, the claim's own token (`token:<n>`) and its whole
-- queue. ARGV: prefix, now, limit, lease end, token, lease key TTL.
local P, now, limit, lease_until, token, lease_ttl =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], tonumber(ARGV[6])
local gids = redis.call('ZRANGE', P .. 'ready', 0, limit - 1)
if #gids < limit then
  local more = redis.call('ZRANGEBYSCORE', P .. 'due', '-inf', now, 'LIMIT', 0, limit - #gids)
  for _, gid in ipairs(more) do gids[#gids + 1] = gid end
end
local out, seen = {}, {}
for _, gid in ipairs(gids) do
  if not seen[gid] then
    seen[gid] = true
    local q = P .. 'q:' .. gid
    redis.call('ZREM', P .. 'ready', gid)
    -- Only the lease holder writes the log entry from now on.
    local mine = token .. ':' .. (#out + 1)
    local group = {redis.call('GET', P .. 'nf:' .. gid) or '', mine}
    for _, id in ipairs(redis.call('LRANGE', q, 0, -1)) do
      local f = redis.call('HMGET', P .. 'n:' .. id,
        'receiver', 'group_key', 'route', 'events', 'created_at', 'attempts', 'not_before')
      if f[1] then
        group[#group + 1] = id
        for k = 1, 7 do group[#group + 1] = f[k] or '0' end
      else
        redis.call('LREM', q, 0, id)
      end
    end
    if #group == 2 then
      redis.call('ZREM', P .. 'due', gid)
      redis.call('DEL', P .. 'lease:' .. gid)
    else
      -- Due again when the lease ends: that is how a dead holder's work is taken over.
      redis.call('ZADD', P .. 'due', lease_until, gid)
      redis.call('SET', P .. 'lease:' .. gid, mine, 'EX', lease_ttl)
      out[#out + 1] = group
    end
  end
end
return out
