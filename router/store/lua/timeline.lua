-- Append timeline entries to records that exist; each list lives as long as its record
-- (no TTL while the record is pending). ARGV: prefix, then id, entry (JSON) pairs.
local P = ARGV[1]
for k = 2, #ARGV, 2 do
  local id = ARGV[k]
  local ttl = redis.call('PTTL', P .. 'n:' .. id)
  if ttl ~= -2 then
    local key = P .. 'tl:' .. id
    redis.call('RPUSH', key, ARGV[k + 1])
    if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
  end
end
return 1
