--[==[
piece.lua: apply the next piece of a ready journal. Pieces go in order, each once: the
state's `jnext` moves on in the same atomic step as the piece's writes, so a replay, or a
second process finishing the same journal, writes nothing twice. The last piece commits:
position, version, record count, block versions, and it closes the journal.

KEYS[1]  the dataset's state hash
KEYS[2]  the journal hash
ARGV[1]  journal id
ARGV[2]  piece index

Returns 'ok'; or, writing nothing: 'done' (that piece is already applied), 'gone' (the
journal is closed: committed, or never became ready and was dropped), 'ahead' (an earlier
piece is not applied yet).
]==]
--#include ops.lua

local st = redis.call('HMGET', KEYS[1], 'journal', 'jready', 'jnext')
if st[1] ~= ARGV[1] or not st[2] then return 'gone' end
local n, nextPiece = tonumber(ARGV[2]), tonumber(st[3])
if n < nextPiece then return 'done' end
if n > nextPiece then return 'ahead' end
local piece = redis.call('HGET', KEYS[2], n)
redis.call('HSET', KEYS[1], 'jnext', n + 1)
runOps(piece)
return 'ok'
