--[==[
fields.lua: read one field from each of many hashes (records from their small hashes) in one
call, where one HGET each would cost the client more than Redis. Reads only; the caller
bounds how many pairs one call holds, so it stays short.

KEYS[1]  the dataset's state hash: not read, declared so that a cluster routes the call to
         the dataset's slot, where every key below is too
ARGV  key, field, key, field, ...

Returns one value per pair (false, read as null, where there is none).
]==]

local out = {}
for i = 1, #ARGV, 2 do
  out[#out + 1] = redis.call('HGET', ARGV[i], ARGV[i + 1])
end
return out
