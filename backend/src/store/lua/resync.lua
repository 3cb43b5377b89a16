--[==[
resync.lua: set or clear the resync mark of one generation of a dataset, and nothing else.

KEYS[1]  the dataset's state hash: <prefix>{<dataset>}:state
ARGV[1]  the generation the caller is resyncing
ARGV[2]  the mark as JSON ({since, applied, remaining}), or '' to clear it (caught up)

Returns 1 when written, 0 when the state is gone or belongs to another generation: a mark
written after a loss would otherwise outlive the data it describes.
]==]

if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], 'resync')
else
  redis.call('HSET', KEYS[1], 'resync', ARGV[2])
end
return 1
