-- Shared by the scripts that end a claim: the group is scheduled by its queue. Each queued
-- notification is due at its hold's end (`not_before`, 0 for at once), except those in
-- `claimed`, which are due at `claimed_due` (a retry). Due now: ready, in recording order;
-- later: in `due` at the earliest time; nothing queued: off the schedule.
local function requeue(P, gid, claimed, claimed_due)
  local q = P .. 'q:' .. gid
  local ids = redis.call('LRANGE', q, 0, -1)
  if #ids == 0 then
    redis.call('ZREM', P .. 'due', gid)
    redis.call('ZREM', P .. 'ready', gid)
    return
  end
  local earliest = nil
  for _, id in ipairs(ids) do
    local at
    if claimed and claimed[id] then
      at = tonumber(claimed_due)
    else
      at = tonumber(redis.call('HGET', P .. 'n:' .. id, 'not_before') or '0') or 0
    end
    if earliest == nil or at < earliest then earliest = at end
  end
  if earliest <= 0 then
    redis.call('ZREM', P .. 'due', gid)
    redis.call('ZADD', P .. 'ready', redis.call('HGET', P .. 'n:' .. ids[1], 'seq') or 0, gid)
  else
    redis.call('ZREM', P .. 'ready', gid)
    redis.call('ZADD', P .. 'due', earliest, gid)
  end
end
