-- One page of records newest first: walks the smallest of the indexes that apply, below
-- `before` (a seq; '' for the newest), and keeps the records whose fields all match and
-- whose text contains `text`. Examines at most `budget` records. Returns the cursor (the
-- seq to continue below; '' when nothing older matches), then up to `limit` ids.
-- ARGV: prefix, before, limit, budget, text, #indexes, indexes..., field, value pairs.
local P, before, limit, budget, text = ARGV[1], ARGV[2], tonumber(ARGV[3]),
  tonumber(ARGV[4]), ARGV[5]
local nidx = tonumber(ARGV[6])
local best, size = nil, nil
for k = 7, 6 + nidx do
  local n = redis.call('ZCARD', ARGV[k])
  if size == nil or n < size then best, size = ARGV[k], n end
end
local fields, values = {}, {}
for k = 7 + nidx, #ARGV, 2 do
  fields[#fields + 1] = ARGV[k]
  values[#values + 1] = ARGV[k + 1]
end
if text ~= '' then fields[#fields + 1] = 'text' end
local top = '+inf'
if before ~= '' then top = '(' .. before end
local found, examined, last = {}, 0, nil
local chunk = math.min(math.max(limit + 1, 64), 1000)
while true do
  local page = redis.call('ZREVRANGEBYSCORE', best, top, '-inf', 'WITHSCORES', 'LIMIT', 0, chunk)
  if #page == 0 then return {'', unpack(found)} end
  for k = 1, #page, 2 do
    local id, seq = page[k], page[k + 1]
    examined = examined + 1
    last = seq
    local ok = true
    if #fields > 0 then
      local f = redis.call('HMGET', P .. 'n:' .. id, unpack(fields))
      for j = 1, #values do
        if f[j] ~= values[j] then ok = false break end
      end
      if ok and text ~= '' then
        ok = f[#fields] and string.find(f[#fields], text, 1, true) ~= nil
      end
    elseif redis.call('EXISTS', P .. 'n:' .. id) == 0 then
      ok = false
    end
    if ok then
      if #found == limit then
        -- One more match: there is an older page, starting below the last one returned.
        return {redis.call('HGET', P .. 'n:' .. found[#found], 'seq') or seq, unpack(found)}
      end
      found[#found + 1] = id
    end
    if examined >= budget then return {last, unpack(found)} end
  end
  top = '(' .. last
end
