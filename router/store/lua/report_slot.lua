-- Record a report's latest slot. Returns 1 when `slot` is later than the one recorded
-- (the caller sends), 0 when not, -1 when none was recorded (recorded now, not sent).
-- ARGV: prefix, name, slot, key TTL.
local key = ARGV[1] .. 'report:' .. ARGV[2]
local current = redis.call('GET', key)
if current and tonumber(current) >= tonumber(ARGV[3]) then return 0 end
redis.call('SET', key, ARGV[3], 'EX', tonumber(ARGV[4]))
if current then return 1 end
return -1
