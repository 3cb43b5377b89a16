--[==[
blocks.lua: read many rollup blocks (hashes: slot → cell) in one call, where one HGETALL each
would cost the client more than Redis. Reads only; a block holds at most one field per bucket
of a block and the caller bounds how many blocks one call reads, so it stays short.

ARGV  block keys

Returns per key its fields and values, flat, as HGETALL does ({} for a missing key).
]==]

local out = {}
for i = 1, #ARGV do
  out[i] = redis.call('HGETALL', ARGV[i])
end
return out
