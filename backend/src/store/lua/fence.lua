--[==[
fence.lua, included first by every script that writes the sync path (`--#include fence.lua`):
the lease guard. The caller appends the dataset's lease hash to KEYS and its fencing token to
ARGV; both are taken off again here, so the script reads KEYS and ARGV as documented in its
own header. Nothing is written unless the lease is live (its TTL, kept by Redis, has not run
out) and still carries the caller's token: a replica that paused past its lease, or lost it to
another, writes nothing. piece.lua is not fenced: it only applies a journal that a holder
stored whole and marked ready, each piece exactly once, so whoever runs it writes the same.

Returns 'fenced' (from the including script) when the guard refuses.
]==]
local leaseKey, fencingToken = table.remove(KEYS), table.remove(ARGV)
if redis.call('HGET', leaseKey, 'token') ~= fencingToken then return 'fenced' end
