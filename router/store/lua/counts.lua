-- How many records created at or after `since` are in each (state, reason): the
-- per-minute counts of whole minutes, plus the records of the minute `since` falls in,
-- read one by one. Returns field, count pairs ("state|reason"). ARGV: prefix, since.
local P, since = ARGV[1], tonumber(ARGV[2])
local first = math.floor(since / 60)
local totals = {}
local function add(field, n)
  totals[field] = (totals[field] or 0) + n
end
if since > first * 60 then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'recs:c', since, '(' .. ((first + 1) * 60))) do
    local f = redis.call('HMGET', P .. 'n:' .. id, 'state', 'reason')
    if f[1] then add(f[1] .. '|' .. (f[2] or ''), 1) end
  end
  first = first + 1
end
for _, minute in ipairs(redis.call('ZRANGEBYSCORE', P .. 'stats', first, '+inf')) do
  local counts = redis.call('HGETALL', P .. 'stats:' .. minute)
  if #counts == 0 then redis.call('ZREM', P .. 'stats', minute) end
  for k = 1, #counts, 2 do add(counts[k], tonumber(counts[k + 1])) end
end
local out = {}
for field, n in pairs(totals) do
  if n > 0 then
    out[#out + 1] = field
    out[#out + 1] = n
  end
end
return out
