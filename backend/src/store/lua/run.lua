--[==[
run.lua: run one piece atomically, guarded. It runs only on the generation the caller
planned against, only while no journal is open, and only if nothing was written since the
caller read the state: the state's write sequence `seq` must be the one the caller saw. It
bumps `seq`, so a replay of the same call, or any write planned against the same state,
finds it moved and writes nothing.

KEYS[1]  the dataset's state hash
ARGV[1]  generation
ARGV[2]  expected seq
ARGV[3]  the piece (see ops.lua)

Returns 'ok', or without writing anything: 'lost' (no state, or another generation), 'busy'
(a journal is open), 'moved' (seq is not the expected one).
Fenced (fence.lua): the lease hash follows these KEYS and the fencing token these ARGV;
returns 'fenced', writing nothing, when the caller no longer holds the lease.
]==]
--#include fence.lua
--#include ops.lua

local st = redis.call('HMGET', KEYS[1], 'gen', 'seq', 'journal')
if st[1] ~= ARGV[1] then return 'lost' end
if st[3] then return 'busy' end
if (st[2] or '0') ~= ARGV[2] then return 'moved' end
redis.call('HSET', KEYS[1], 'seq', tonumber(ARGV[2]) + 1)
runOps(ARGV[3])
return 'ok'
