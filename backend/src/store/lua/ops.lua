--[==[
ops.lua, included by the scripts that write (`--#include ops.lua`): a piece is a MessagePack
array of commands, each an array of strings [command, key, arguments...]. The service builds
them (backend/src/store/redis-pieces.ts) with the key names of redis-keys.ts, and bounds what
one piece holds so that no script runs for long. Every command in a piece writes an absolute
value or is idempotent (HSET, HDEL, SADD, PFADD, DEL...), so the rules are never here.
Every key a piece names is one of the dataset's (redis-pieces.ts assertKeysUnder refuses any
other as the piece is encoded): all in the slot of the state hash the calling script declares.
]==]
local function runOps(payload)
  local ops = cmsgpack.unpack(payload)
  for i = 1, #ops do
    redis.call(unpack(ops[i]))
  end
  return #ops
end
