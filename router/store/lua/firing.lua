-- Label sets (JSON) of the alerts whose firing state lasts beyond `now`.
-- ARGV: prefix, now.
local P, now = ARGV[1], ARGV[2]
local fps = redis.call('ZRANGEBYSCORE', P .. 'alerts:x', '(' .. now, '+inf')
local out = {}
-- In slices: Lua's unpack() cannot spread tens of thousands of values.
for first = 1, #fps, 1000 do
  local slice = {}
  for k = first, math.min(first + 999, #fps) do slice[#slice + 1] = fps[k] end
  for _, labels in ipairs(redis.call('HMGET', P .. 'alerts', unpack(slice))) do
    if labels then out[#out + 1] = labels end
  end
end
return out
