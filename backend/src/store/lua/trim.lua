--[==[
trim.lua: drop what a dataset keeps from before its retention cutoff, a slice at a time
so that no single call blocks Redis for long.

KEYS[1]  the dataset's state hash: <prefix>{<dataset>}:state; its `trimmed` field is the
         time (epoch ms) up to which rollup blocks and HyperLogLogs are already gone
ARGV[1]  the dataset's key prefix: <prefix>{<dataset>}:
ARGV[2]  cutoff, epoch ms: base buckets ending at or before it lose their records; rollup
         blocks and HyperLogLogs whose whole span ends at or before it are deleted
ARGV[3]  layout JSON, as for apply.lua
ARGV[4]  at most this many base buckets of records, and of time, per call

Rollup and HyperLogLog keys are not listed anywhere: their names follow from the layout,
the groups seen (`g:<mask>`) and the time, so the keys of the slice (trimmed, next] are
computed and deleted.

Returns {records removed, 1 if more remains else 0}.
]==]

local stateKey = KEYS[1]
local P = ARGV[1]
local cutoff = tonumber(ARGV[2])
local L = cjson.decode(ARGV[3])
local limit = tonumber(ARGV[4])
local tiers, masks, K, B = L.tiers, L.masks, L.K, L.B
local resolution = tiers[1]
local recKey = P .. 'rec'

local function int(n)
  return string.format('%.0f', n)
end

local doomed = {}
local function drop(key)
  doomed[#doomed + 1] = key
  if #doomed == 500 then
    redis.call('UNLINK', unpack(doomed))
    doomed = {}
  end
end

local mark = tonumber(redis.call('HGET', stateKey, 'trimmed') or '')
if mark == nil then
  -- Never trimmed: start where the oldest records held start (nothing older was written).
  local oldest = redis.call('ZRANGE', P .. 'kz', 0, 0, 'WITHSCORES')[2]
  local span = resolution * B
  mark = oldest and math.floor(tonumber(oldest) / span) * span or cutoff
end

-- Records, by the base buckets that index them.
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
local exists = redis.call('EXISTS', stateKey) == 1
if removed > 0 and exists then
  redis.call('HINCRBY', stateKey, 'records', -removed)
end

-- Rollup blocks and HyperLogLogs of the next slice of time.
local upto = math.min(cutoff, mark + limit * resolution)
if upto > mark then
  local groups = {}
  for pi, mask in ipairs(masks) do
    groups[pi] = redis.call('SMEMBERS', P .. 'g:' .. mask)
  end
  for _, size in ipairs(tiers) do
    local span = size * B
    for block = math.floor(mark / span), math.floor(upto / span) - 1 do
      for pi, mask in ipairs(masks) do
        for _, group in ipairs(groups[pi]) do
          drop(P .. 'r:' .. int(size) .. ':' .. mask .. ':' .. group .. ':' .. int(block))
        end
      end
    end
    if K > 0 then
      local bucket = math.floor(mark / size) * size
      while bucket + size <= upto do
        for pi, mask in ipairs(masks) do
          for _, group in ipairs(groups[pi]) do
            for k = 1, K do
              drop(P .. 'h:' .. int(size) .. ':' .. mask .. ':' .. k .. ':' .. int(bucket) .. ':' .. group)
            end
          end
        end
        bucket = bucket + size
      end
    end
  end
end
if #doomed > 0 then redis.call('UNLINK', unpack(doomed)) end
if exists then redis.call('HSET', stateKey, 'trimmed', int(math.max(mark, upto))) end

local more = (#sets == limit or upto < cutoff) and 1 or 0
return { removed, more }
