--[==[
fenced.lua: run a piece of commands (see ops.lua) under the lease guard (fence.lua) and
nothing else: the writes of the sync path that need no other guard (resetting a dataset, the
status, sync events and regions, clearing an operator's resync request).

KEYS     (only the lease, appended by the caller)
ARGV[1]  the piece

Returns 'ok', or 'fenced' without writing anything.
]==]
--#include fence.lua
--#include ops.lua

runOps(ARGV[1])
return 'ok'
