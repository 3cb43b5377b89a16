--[==[
ranges.lua: read many byte ranges of strings (spans of rollup cells) in one call, where one
GETRANGE each would cost the client more than Redis. Reads only; the caller bounds how many
ranges one call holds, so it stays short.

KEYS[1]  a key of the dataset the ranges belong to (its state hash): it names the Redis
         Cluster node to run on; every key below is of the same dataset, so in its slot
ARGV     key, start, end, key, start, end, ... (as GETRANGE takes them; inclusive end)

Returns one string per range ('' past the end of a string or for a missing key).
]==]

local out = {}
for i = 1, #ARGV, 3 do
  out[#out + 1] = redis.call('GETRANGE', ARGV[i], ARGV[i + 1], ARGV[i + 2])
end
return out
