--[==[
journal.lua: open a journal for a batch too big for one piece, or add pieces to it. Nothing
of the batch is applied until every piece is stored and the journal is marked ready; from
then on piece.lua applies the pieces in order and anyone may finish them (after a crash,
the next process does), so a batch is applied whole or, until the last piece, not committed.

KEYS[1]  the dataset's state hash
KEYS[2]  the journal hash: piece index → piece
ARGV[1]  'open' or 'add'
ARGV[2]  generation
ARGV[3]  expected seq ('open'; as in run.lua, and bumped)
ARGV[4]  journal id
ARGV[5]  number of pieces
ARGV[6]  first and last base bucket the batch touches (data stamps of ranges that overlap
ARGV[7]  them are not cached while the journal is open)
ARGV[8]  index of the first piece below
ARGV[9…] pieces

Returns 'ok' (or 'ready' once the last piece is stored), or without writing anything:
'lost', 'busy', 'moved' (as run.lua, on 'open'), 'gone' (on 'add': the journal is not this
one any more, or is already ready).
Fenced (fence.lua): the lease hash follows these KEYS and the fencing token these ARGV;
returns 'fenced', writing nothing, when the caller no longer holds the lease.
]==]
--#include fence.lua

local state, journal = KEYS[1], KEYS[2]
local st = redis.call('HMGET', state, 'gen', 'seq', 'journal', 'jready')
if st[1] ~= ARGV[2] then return 'lost' end
if ARGV[1] == 'open' then
  if st[3] then return 'busy' end
  if (st[2] or '0') ~= ARGV[3] then return 'moved' end
  redis.call('DEL', journal)
  redis.call('HSET', state, 'seq', tonumber(ARGV[3]) + 1, 'journal', ARGV[4], 'jnext', 0,
    'jpieces', ARGV[5], 'jfrom', ARGV[6], 'jto', ARGV[7])
elseif st[3] ~= ARGV[4] or st[4] then
  return 'gone'
end
local first = tonumber(ARGV[8])
for i = 9, #ARGV do
  redis.call('HSET', journal, first + i - 9, ARGV[i])
end
if first + #ARGV - 8 == tonumber(ARGV[5]) then
  redis.call('HSET', state, 'jready', 1)
  return 'ready'
end
return 'ok'
