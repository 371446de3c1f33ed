-- Post slots per destination, shared by every replica. ARGV: prefix, key, now, interval
-- (reserve) or until (hold), mode ('reserve' or 'hold'), key TTL in ms. The key holds when
-- the next slot starts. Returns the reserved slot's start as a string (Lua numbers would
-- come back as integers).
local P, key, now, amount, mode, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]),
  tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local k = P .. 'pace:' .. key
local free = tonumber(redis.call('GET', k) or '0') or 0
if mode == 'hold' then
  if amount > free then redis.call('SET', k, string.format('%.6f', amount), 'PX', ttl) end
  return string.format('%.6f', math.max(amount, free))
end
local start = math.max(now, free)
redis.call('SET', k, string.format('%.6f', start + amount), 'PX', ttl)
return string.format('%.6f', start)
