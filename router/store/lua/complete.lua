-- Finish a claim: each notification's final state, and the group's log entry, at once;
-- nothing if the lease is no longer the claim's. ARGV: prefix, gid, token, now, state,
-- reason, error, attempted (0/1), delivered_in, record TTL, log entry, its TTL, its
-- expiry, when it was notified if it tells of firing alerts ('' if not), timeline entries
-- (JSON [[id, entry], ...]), the claim's rollup counts (JSON [day TTL, hour, day, hour
-- TTL, field, counts, ...], or '' when written apart), then the claim's ids, oldest first.
local P, gid, token, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local state, reason, err, attempted = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local delivered_in, record_ttl = ARGV[9], tonumber(ARGV[10])
local entry, entry_ttl, entry_expires = ARGV[11], tonumber(ARGV[12]), ARGV[13]
local entry_firing_at = ARGV[14]
local lease = P .. 'lease:' .. gid
-- Counted whoever holds the lease, as when written by a call of its own after this one.
if ARGV[16] ~= '' then
  local r = cjson.decode(ARGV[16])
  local rows = {}
  for i = 5, #r do rows[#rows + 1] = r[i] end
  rollup_counts(P, r[1], r[2], r[3], r[4], rows)
end
-- Not our lease any more: taken over after it ran out, or already completed.
if redis.call('GET', lease) ~= token then return 0 end
local q = P .. 'q:' .. gid
local latest = ARGV[#ARGV]
for _, pair in ipairs(cjson.decode(ARGV[15])) do
  redis.call('RPUSH', P .. 'tl:' .. pair[1], pair[2])
end
for k = 17, #ARGV do
  local id = ARGV[k]
  local nkey = P .. 'n:' .. id
  if redis.call('HGET', nkey, 'state') == 'pending' then
    local seq = redis.call('HGET', nkey, 'seq') or 0
    redis.call('ZREM', P .. 'recs:st:pending', id)
    index_add(P .. 'recs:st:' .. state, seq, id, record_ttl)
    if reason ~= '' then index_add(P .. 'recs:re:' .. reason, seq, id, record_ttl) end
    stats_move(P, redis.call('HGET', nkey, 'created_at'), 'pending|', state .. '|' .. reason,
      record_ttl)
    redis.call('EXPIRE', P .. 'tl:' .. id, record_ttl)
    -- Webhooks folded into the newest one point at the record that carried them.
    local carrier = delivered_in
    if carrier == '' and id ~= latest then carrier = latest end
    redis.call('HSET', nkey, 'state', state, 'reason', reason, 'updated_at', now,
      'delivered_in', carrier)
    if carrier ~= '' then
      local index = P .. 'recs:in:' .. carrier
      redis.call('ZADD', index, redis.call('HGET', nkey, 'seq') or 0, id)
      redis.call('EXPIRE', index, record_ttl)
    end
    if err ~= '' then redis.call('HSET', nkey, 'last_error', err) end
    if attempted > 0 then redis.call('HINCRBY', nkey, 'attempts', attempted) end
    redis.call('EXPIRE', nkey, record_ttl)
    redis.call('ZADD', P .. 'done', now, id)
    redis.call('EXPIRE', P .. 'done', record_ttl)
    redis.call('LREM', q, 1, id)
    redis.call('DECR', P .. 'pending')
  end
end
redis.call('DEL', lease)
requeue(P, gid, nil, nil)
if entry ~= '' then
  redis.call('SET', P .. 'nf:' .. gid, entry, 'EX', entry_ttl)
  redis.call('ZADD', P .. 'nfx', entry_expires, gid)
  if redis.call('TTL', P .. 'nfx') < entry_ttl then
    redis.call('EXPIRE', P .. 'nfx', entry_ttl)
  end
  -- The groups whose receiver was last told of firing alerts, by when (the console's).
  if entry_firing_at ~= '' then
    redis.call('ZADD', P .. 'nff', entry_firing_at, gid)
    if redis.call('TTL', P .. 'nff') < entry_ttl then
      redis.call('EXPIRE', P .. 'nff', entry_ttl)
    end
  else
    redis.call('ZREM', P .. 'nff', gid)
  end
end
return 1
