--[==[
blocks.lua: read many small hashes of records whole in one call (Store.scanRecords), where one
HGETALL each would cost the client more than Redis. Reads only; a hash of records holds at
most 64 records (a few dozen where ids are not small integers), and the caller reads at most
16 per call, so it stays short. Rollup blocks are not read here but with one HGETALL each:
what a script reads is copied into Lua and out again, which costs Redis several times
HGETALL's time for the thousands of cells of a panel.

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
