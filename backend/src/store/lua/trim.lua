--[==[
trim.lua: drop what a dataset keeps from before its retention cutoff, a slice at a time
so that no single call blocks Redis for long.

KEYS[1]  the dataset's state hash: <prefix>{<dataset>}:state
ARGV[1]  the dataset's key prefix: <prefix>{<dataset>}:
ARGV[2]  cutoff, epoch ms: base buckets ending at or before it lose their records;
         rollup blocks and HyperLogLogs whose whole span ends at or before it are deleted
ARGV[3]  base resolution, ms
ARGV[4]  at most this many base buckets and this many rollup keys per call

Returns {records removed, 1 if more remains else 0}.
]==]

local stateKey = KEYS[1]
local P = ARGV[1]
local cutoff = tonumber(ARGV[2])
local resolution = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local recKey = P .. 'rec'

local removed = 0
local sets = redis.call('ZRANGEBYSCORE', P .. 'kz', '-inf', cutoff - resolution, 'LIMIT', 0, limit)
for _, setKey in ipairs(sets) do
  local ids = redis.call('SMEMBERS', setKey)
  for i = 1, #ids, 500 do
    removed = removed + redis.call('HDEL', recKey, unpack(ids, i, math.min(i + 499, #ids)))
  end
  redis.call('DEL', setKey)
  redis.call('ZREM', P .. 'kz', setKey)
end
if removed > 0 and redis.call('EXISTS', stateKey) == 1 then
  redis.call('HINCRBY', stateKey, 'records', -removed)
end

local keys = redis.call('ZRANGEBYSCORE', P .. 'keys', '-inf', cutoff, 'LIMIT', 0, limit)
for i = 1, #keys, 500 do
  local chunk = { unpack(keys, i, math.min(i + 499, #keys)) }
  redis.call('UNLINK', unpack(chunk))
  redis.call('ZREM', P .. 'keys', unpack(chunk))
end

local more = (#sets == limit or #keys == limit) and 1 or 0
return { removed, more }
