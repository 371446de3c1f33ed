-- Add counters to the hour's and the day's rollup hashes (rollup_counts). ARGV: prefix,
-- the day key's TTL, hour, day, the hour key's TTL, then field, counts per row.
local rows = {}
for i = 6, #ARGV do rows[#rows + 1] = ARGV[i] end
rollup_counts(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], rows)
return 1
