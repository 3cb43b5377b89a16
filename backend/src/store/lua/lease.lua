--[==[
lease.lua: grant, renew or give up the sync lease of one dataset. The lease is a hash with a
TTL (holder, token), so it ends on Redis's clock whatever happens to its holder; the fencing
token comes from a counter that is never reset (and that starts from Redis's clock when it is
missing, even after Redis lost its keys), so every grant's token is higher than any before it.

KEYS[1]  the lease hash
KEYS[2]  the fencing-token counter
ARGV[1]  'acquire', 'renew' or 'release'
ARGV[2]  holder (acquire) or token (renew, release)
ARGV[3]  TTL in ms (acquire, renew)

Returns, acquire: {1, holder, token, ttl} granted (a new token, or the holder's own extended),
or {0, holder, token, ttl} held by another. renew: 1, or 0 when the token no longer holds it.
release: 1, or 0 when it was not held with that token.
]==]

local lease, counter = KEYS[1], KEYS[2]
local held = redis.call('HMGET', lease, 'holder', 'token')
if ARGV[1] == 'acquire' then
  if held[1] and held[1] ~= ARGV[2] then
    return { 0, held[1], tonumber(held[2]), redis.call('PTTL', lease) }
  end
  if not held[2] and redis.call('EXISTS', counter) == 0 then
    -- First grant, or Redis lost its keys: start from its clock (ms), so tokens keep growing.
    local now = redis.call('TIME')
    redis.call('SET', counter, now[1] * 1000 + math.floor(now[2] / 1000))
  end
  local token = held[2] or tostring(redis.call('INCR', counter))
  redis.call('HSET', lease, 'holder', ARGV[2], 'token', token)
  redis.call('PEXPIRE', lease, ARGV[3])
  return { 1, ARGV[2], tonumber(token), tonumber(ARGV[3]) }
end
if held[2] ~= ARGV[2] then return 0 end
if ARGV[1] == 'renew' then
  redis.call('PEXPIRE', lease, ARGV[3])
else
  redis.call('DEL', lease)
end
return 1
