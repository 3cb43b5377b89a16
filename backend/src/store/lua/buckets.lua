--[==[
buckets.lua: list the ids of the records of base buckets (each bucket's index set), for
repairs of min/max and sketches. Reads only, and bounded: it stops after the bucket that
brings it past ARGV[1] ids, and skips (answers 'big' for) a bucket holding more than that
alone, which the caller reads with SSCAN instead.

KEYS[1]  the dataset's state hash: not read, declared so that a cluster routes the call to
         the dataset's slot, where every key below is too
ARGV[1]  most ids to read in one call
ARGV[2…] bucket index keys

Returns, per bucket read: its ids, or 'big'; buckets past the bound are left out (the caller
asks again for them).
]==]

local limit = tonumber(ARGV[1])
local out, total = {}, 0
for i = 2, #ARGV do
  if total >= limit then break end
  local size = redis.call('SCARD', ARGV[i])
  if size > limit then
    out[#out + 1] = 'big'
  else
    out[#out + 1] = redis.call('SMEMBERS', ARGV[i])
    total = total + size
  end
end
return out
