-- Add counters to the hour's and the day's rollup hashes. A field is `kind US name`, its
-- value the row's nonzero columns as `index:count,index:count` (one field per row keeps a
-- month's read small). ARGV: prefix, the day key's TTL, hour, day, the hour key's TTL,
-- then field, counts per row.
local P = ARGV[1]
local keys = {P .. 'ru:h:' .. ARGV[3], P .. 'ru:d:' .. ARGV[4]}
local ttls = {tonumber(ARGV[5]), tonumber(ARGV[2])}
for k, key in ipairs(keys) do
  local ttl = ttls[k]
  for i = 6, #ARGV, 2 do
    local row = {}
    local old = redis.call('HGET', key, ARGV[i])
    if old then
      for index, count in string.gmatch(old, '(%d+):(%d+)') do
        row[tonumber(index)] = tonumber(count)
      end
    end
    for index, count in string.gmatch(ARGV[i + 1], '(%d+):(%d+)') do
      local at = tonumber(index)
      row[at] = (row[at] or 0) + tonumber(count)
    end
    local parts = {}
    for index, count in pairs(row) do
      parts[#parts + 1] = index .. ':' .. string.format('%d', count)
    end
    redis.call('HSET', key, ARGV[i], table.concat(parts, ','))
  end
  redis.call('EXPIRE', key, ttl)
end
return 1
