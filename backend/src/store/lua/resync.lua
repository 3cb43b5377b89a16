--[==[
resync.lua: set or clear the resync mark of one generation of a dataset, and nothing else.
The mark is a field of the state hash of its own: no batch writes it, so it needs no write
sequence (`seq`) and moves none.

KEYS[1]  the dataset's state hash
ARGV[1]  the generation the caller is resyncing
ARGV[2]  the layout format the caller writes (a state of another format reads as none)
ARGV[3]  the mark as JSON ({since, applied, remaining}), or '' to clear it (caught up)

Returns 1 when written, 0 when the state is gone, belongs to another generation or is of
another format: a mark written after a loss would otherwise outlive the data it describes.
Fenced (fence.lua): the lease hash follows these KEYS and the fencing token these ARGV;
returns 'fenced', writing nothing, when the caller no longer holds the lease.
]==]
--#include fence.lua

local st = redis.call('HMGET', KEYS[1], 'gen', 'format')
if st[1] ~= ARGV[1] or st[2] ~= ARGV[2] then
  return 0
end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], 'resync')
else
  redis.call('HSET', KEYS[1], 'resync', ARGV[3])
end
return 1
