--[==[
ranges.lua: read many byte ranges of strings (spans of rollup cells) in one call, where one
GETRANGE each would cost the client more than Redis. Reads only; the caller bounds how many
ranges one call holds, so it stays short.

ARGV  key, start, end, key, start, end, ... (as GETRANGE takes them; inclusive end)

Returns one string per range ('' past the end of a string or for a missing key).
]==]

local out = {}
for i = 1, #ARGV, 3 do
  out[#out + 1] = redis.call('GETRANGE', ARGV[i], ARGV[i + 1], ARGV[i + 2])
end
return out
