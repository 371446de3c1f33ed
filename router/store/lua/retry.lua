-- An admin's retry: a failed or dead record is pending again, due now, attempts reset,
-- with a `retried` timeline entry; 0 when the record is not failed or dead.
-- ARGV: prefix, id, now, timeline entry (JSON), index TTL.
local P, id, now, entry, index_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local nkey = P .. 'n:' .. id
local f = redis.call('HMGET', nkey, 'state', 'reason', 'gid', 'seq', 'created_at',
  'delivered_in')
if f[1] ~= 'failed' and f[1] ~= 'dead' then return 0 end
redis.call('HSET', nkey, 'state', 'pending', 'reason', '', 'attempts', 0,
  'next_attempt_at', 0, 'not_before', 0, 'updated_at', now, 'delivered_in', '')
redis.call('PERSIST', nkey)
redis.call('ZREM', P .. 'done', id)
redis.call('ZREM', P .. 'recs:st:' .. f[1], id)
index_add(P .. 'recs:st:pending', f[4], id, index_ttl)
if f[2] and f[2] ~= '' then redis.call('ZREM', P .. 'recs:re:' .. f[2], id) end
if f[6] and f[6] ~= '' then redis.call('ZREM', P .. 'recs:in:' .. f[6], id) end
stats_move(P, f[5], f[1] .. '|' .. (f[2] or ''), 'pending|', index_ttl)
redis.call('RPUSH', P .. 'q:' .. f[3], id)
redis.call('INCR', P .. 'pending')
-- A leased group picks it up when its claim ends.
if redis.call('EXISTS', P .. 'lease:' .. f[3]) == 0 then requeue(P, f[3], nil, nil) end
local tl = P .. 'tl:' .. id
redis.call('RPUSH', tl, entry)
redis.call('PERSIST', tl)
return 1
