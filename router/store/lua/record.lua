-- Record one webhook: its notifications (pending, queued per group), alert states and
-- deploys. ARGV: prefix, #notifications, #alerts, #deploys, index TTL, deploy TTL, then
-- 13 values per notification, 5 per alert state, 5 per deploy.
local P = ARGV[1]
local n, na, nd = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local index_ttl, deploy_ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local function extend(key, ttl)
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
end
local i = 7
for _ = 1, n do
  local id, gid, receiver, group_key = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local route, events, created = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local held_until = ARGV[i + 7]
  local not_before = tonumber(held_until)
  local env, severity, source, alertname, text =
    ARGV[i + 8], ARGV[i + 9], ARGV[i + 10], ARGV[i + 11], ARGV[i + 12]
  i = i + 13
  local nkey = P .. 'n:' .. id
  -- A client retrying after a lost reply must not queue the notification twice.
  if redis.call('EXISTS', nkey) == 0 then
    local seq = redis.call('INCR', P .. 'seq')
    redis.call('HSET', nkey, 'receiver', receiver, 'group_key', group_key, 'gid', gid,
      'route', route, 'events', events, 'created_at', created, 'updated_at', created,
      'state', 'pending', 'reason', '', 'attempts', 0, 'last_error', '',
      'next_attempt_at', held_until, 'delivered_in', '', 'seq', seq,
      'not_before', held_until, 'env', env, 'severity', severity, 'source', source,
      'alertname', alertname, 'text', text)
    redis.call('RPUSH', P .. 'q:' .. gid, id)
    -- A leased group stays leased; otherwise new work supersedes a retry's backoff, and
    -- a notification on hold makes the group due no later than its hold's end.
    if redis.call('EXISTS', P .. 'lease:' .. gid) == 0 then
      if not_before <= 0 then
        redis.call('ZREM', P .. 'due', gid)
        redis.call('ZADD', P .. 'ready', 'NX', seq, gid)
      elseif not redis.call('ZSCORE', P .. 'ready', gid) then
        local due = tonumber(redis.call('ZSCORE', P .. 'due', gid))
        if not due or due > not_before then redis.call('ZADD', P .. 'due', not_before, gid) end
      end
    end
    for _, idx in ipairs({P .. 'recs', P .. 'recs:r:' .. receiver, P .. 'recs:k:' .. group_key,
        P .. 'recs:e:' .. env, P .. 'recs:v:' .. severity, P .. 'recs:s:' .. source,
        P .. 'recs:st:pending'}) do
      redis.call('ZADD', idx, seq, id)
      redis.call('EXPIRE', idx, index_ttl)
    end
    index_add(P .. 'recs:c', created, id, index_ttl)
    stats_move(P, created, nil, 'pending|', index_ttl)
    redis.call('INCR', P .. 'pending')
  end
end
local changed = false
for _ = 1, na do
  local fp, labels, firing, expires, ttl = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],
    tonumber(ARGV[i + 4])
  i = i + 5
  -- Only firing alerts are kept; a resolve (or a one-shot event) forgets the alert.
  if firing == '1' then
    if redis.call('HGET', P .. 'alerts', fp) ~= labels then
      redis.call('HSET', P .. 'alerts', fp, labels)
      changed = true
    end
    redis.call('ZADD', P .. 'alerts:x', expires, fp)
    extend(P .. 'alerts', ttl)
    extend(P .. 'alerts:x', ttl)
  else
    if redis.call('HDEL', P .. 'alerts', fp) == 1 then changed = true end
    redis.call('ZREM', P .. 'alerts:x', fp)
  end
end
-- Every replica's cached firing set is current while this number stays the same; a storm
-- of alerts that keep firing unchanged leaves it alone.
if changed then redis.call('INCR', P .. 'alerts:gen') end
for _ = 1, nd do
  local member, app, ns, data, at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  redis.call('HSET', P .. 'deploys', member, data)
  local idx = {P .. 'deploys:x'}
  if app ~= '' then idx[#idx + 1] = P .. 'deploys:a:' .. app end
  if ns ~= '' then idx[#idx + 1] = P .. 'deploys:ns:' .. ns end
  for _, key in ipairs(idx) do
    redis.call('ZADD', key, at, member)
    redis.call('EXPIRE', key, deploy_ttl)
  end
  redis.call('EXPIRE', P .. 'deploys', deploy_ttl)
end
return 1
