--[==[
blocks.lua: read many small hashes whole (rollup blocks: slot → cell; hashes of records) in
one call, where one HGETALL each would cost the client more than Redis. Reads only; a block
holds at most one field per bucket of a block, a hash of records a few dozen, and the caller
bounds how many hashes one call reads, so it stays short.

KEYS[1]  the dataset's state hash: not read, declared so that a cluster routes the call to
         the dataset's slot, where every key below is too
ARGV  hash keys

Returns per key its fields and values, flat, as HGETALL does ({} for a missing key).
]==]

local out = {}
for i = 1, #ARGV do
  out[i] = redis.call('HGETALL', ARGV[i])
end
return out
