--[==[
abandon.lua: drop a journal that never became ready (its writer died while storing the
pieces): none of it was applied, so dropping it loses nothing; the batch is read again from
the committed position. Bumps `seq`, so the writer, if it still lives, can add no piece.

KEYS[1]  the dataset's state hash
KEYS[2]  the journal hash
ARGV[1]  journal id

Returns 'ok', or 'gone' (not this journal any more, or it is ready: finish it instead).
Fenced (fence.lua): the lease hash follows these KEYS and the fencing token these ARGV;
returns 'fenced', writing nothing, when the caller no longer holds the lease.
]==]
--#include fence.lua

local st = redis.call('HMGET', KEYS[1], 'journal', 'jready', 'seq')
if st[1] ~= ARGV[1] or st[2] then return 'gone' end
redis.call('HDEL', KEYS[1], 'journal', 'jnext', 'jpieces', 'jfrom', 'jto')
redis.call('HSET', KEYS[1], 'seq', tonumber(st[3] or '0') + 1)
redis.call('DEL', KEYS[2])
return 'ok'
