-- Shared by the scripts that end a claim: after it, webhooks recorded meanwhile make the
-- group ready at once; otherwise it waits until `otherwise_due` (a retry) or leaves the
-- schedule (nothing pending).
local function requeue(P, gid, otherwise_due)
  local q = P .. 'q:' .. gid
  local first = redis.call('LINDEX', q, 0)
  if not first then
    redis.call('ZREM', P .. 'due', gid)
    redis.call('ZREM', P .. 'ready', gid)
  elseif otherwise_due then
    redis.call('ZREM', P .. 'ready', gid)
    redis.call('ZADD', P .. 'due', otherwise_due, gid)
  else
    redis.call('ZREM', P .. 'due', gid)
    redis.call('ZADD', P .. 'ready', redis.call('HGET', P .. 'n:' .. first, 'seq') or 0, gid)
  end
end
