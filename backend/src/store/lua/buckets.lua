--[==[
buckets.lua: read the records of base buckets (ids from each bucket's index set, records
from the records hash), for repairs of min/max and sketches. Reads only, and bounded: it
stops after the bucket that brings it past ARGV[1] records, and skips (answers 'big' for) a
bucket holding more than that alone, which the caller reads with SSCAN and HMGET instead.

KEYS[1]  the records hash
ARGV[1]  most records to read in one call
ARGV[2…] bucket index keys

Returns, per bucket read: {ids, records} or 'big'; buckets past the bound are left out
(the caller asks again for them).
]==]

local limit = tonumber(ARGV[1])
local out, total = {}, 0
for i = 2, #ARGV do
  if total >= limit then break end
  local size = redis.call('SCARD', ARGV[i])
  if size > limit then
    out[#out + 1] = 'big'
  else
    local ids = redis.call('SMEMBERS', ARGV[i])
    local records = {}
    if #ids > 0 then records = redis.call('HMGET', KEYS[1], unpack(ids)) end
    out[#out + 1] = { ids, records }
    total = total + size
  end
end
return out
