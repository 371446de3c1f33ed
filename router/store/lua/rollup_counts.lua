-- Add counters to the hour's and the day's rollup hashes. A field is `kind US name`, its
-- value the row's nonzero columns as `index:count,index:count` (one field per row keeps a
-- month's read small). `rows` is {field, counts, field, counts, ...}.
local function rollup_counts(P, day_ttl, hour, day, hour_ttl, rows)
  local keys = {P .. 'ru:h:' .. hour, P .. 'ru:d:' .. day}
  local ttls = {tonumber(hour_ttl), tonumber(day_ttl)}
  for k, key in ipairs(keys) do
    local ttl = ttls[k]
    for i = 1, #rows, 2 do
      local row = {}
      local old = redis.call('HGET', key, rows[i])
      if old then
        for index, count in string.gmatch(old, '(%d+):(%d+)') do
          row[tonumber(index)] = tonumber(count)
        end
      end
      for index, count in string.gmatch(rows[i + 1], '(%d+):(%d+)') do
        local at = tonumber(index)
        row[at] = (row[at] or 0) + tonumber(count)
      end
      local parts = {}
      for index, count in pairs(row) do
        parts[#parts + 1] = index .. ':' .. string.format('%d', count)
      end
      redis.call('HSET', key, rows[i], table.concat(parts, ','))
    end
    redis.call('EXPIRE', key, ttl)
  end
end
