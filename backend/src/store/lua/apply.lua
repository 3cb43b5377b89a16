--[==[
apply.lua: apply one batch of upstream records to a dataset and commit the new cursor,
atomically: either the whole batch and its cursor are applied, or nothing is.

KEYS[1]  the dataset's state hash: <prefix>{<dataset>}:state
         (gen, cursor, cursorId, version, records). Every other key is derived from
         ARGV[1] and carries the same {<dataset>} hash tag, so they share one slot.
ARGV[1]  the dataset's key prefix: <prefix>{<dataset>}:
ARGV[2]  the generation the caller synced against
ARGV[3]  layout JSON: {tiers: [ms...], masks: [bitmask...], dims: [[1-based dimension index...]...],
         F: doubles per cell, M: metrics, K: distinct fields, B: buckets per block}
ARGV[4]  batch JSON: {records: [[id, time, deleted, dims[], metrics[], distinct[]]...],
         cursor, cursorId (both null to keep the stored position), cutoff}

Returns {'ok', version, upserts, deletes, unchanged, touchedFrom, touchedTo} (numbers as
strings; touched* are '' when nothing changed), or {'lost'} when the state is missing or
belongs to another generation (the store was flushed or reset): nothing is applied then.

An update subtracts the record's old contribution from every cell it was counted in and
adds the new one; a tombstone only subtracts. min and max cannot be subtracted: when a
removed value may have been a cell's extreme, the cell is recomputed from the records
still in its base bucket (base tier) or from the finer tier's cells (1h, 1d). HyperLogLogs
cannot be subtracted either and are rebuilt the same way when a value may have left them.
]==]

local stateKey = KEYS[1]
local P = ARGV[1]
if redis.call('HGET', stateKey, 'gen') ~= ARGV[2] then
  return { 'lost' }
end

local L = cjson.decode(ARGV[3])
local batch = cjson.decode(ARGV[4])
local tiers, masks, dimsOf, F, M, K, B = L.tiers, L.masks, L.dims, L.F, L.M, L.K, L.B
local cutoff = batch.cutoff
local NULL = cjson.null
local SEP = '\31'
local cellFormat = '<' .. string.rep('d', F)
local cellBytes = F * 8
local recKey = P .. 'rec'

local function int(n)
  return string.format('%.0f', n)
end

local function groupOf(dims, pi)
  local parts = {}
  for i, d in ipairs(dimsOf[pi]) do
    parts[i] = dims[d]
  end
  return table.concat(parts, SEP)
end

local function blockKey(ti, pi, group, block)
  return P .. 'r:' .. int(tiers[ti]) .. ':' .. masks[pi] .. ':' .. group .. ':' .. int(block)
end

local function hllKey(ti, pi, k, bucket, group)
  return P .. 'h:' .. int(tiers[ti]) .. ':' .. masks[pi] .. ':' .. k .. ':' .. int(bucket) .. ':' .. group
end

-- Pending changes, per tier: cell id -> delta, hll key -> {adds, removed}.
local cells, hlls = {}, {}
for ti = 1, #tiers do
  cells[ti], hlls[ti] = {}, {}
end
local touchedFrom, touchedTo = nil, nil

local function contribute(rec, sign)
  local base = math.floor(rec.t / tiers[1]) * tiers[1]
  if touchedFrom == nil or base < touchedFrom then touchedFrom = base end
  if touchedTo == nil or base > touchedTo then touchedTo = base end
  for ti = 1, #tiers do
    local size = tiers[ti]
    local bucket = math.floor(rec.t / size) * size
    for pi = 1, #masks do
      local group = groupOf(rec.d, pi)
      local id = pi .. ':' .. int(bucket) .. ':' .. group
      local c = cells[ti][id]
      if c == nil then
        c = { pi = pi, group = group, bucket = bucket, n = 0, sum = {}, nn = {}, addMin = {}, addMax = {}, remMin = {}, remMax = {} }
        for m = 1, M do
          c.sum[m], c.nn[m] = 0, 0
        end
        cells[ti][id] = c
      end
      c.n = c.n + sign
      for m = 1, M do
        local v = rec.m[m]
        if v ~= false then
          c.sum[m] = c.sum[m] + sign * v
          c.nn[m] = c.nn[m] + sign
          if sign > 0 then
            if c.addMin[m] == nil or v < c.addMin[m] then c.addMin[m] = v end
            if c.addMax[m] == nil or v > c.addMax[m] then c.addMax[m] = v end
          else
            if c.remMin[m] == nil or v < c.remMin[m] then c.remMin[m] = v end
            if c.remMax[m] == nil or v > c.remMax[m] then c.remMax[m] = v end
          end
        end
      end
      for k = 1, K do
        local v = rec.x[k]
        if v ~= false then
          local key = hllKey(ti, pi, k, bucket, group)
          local h = hlls[ti][key]
          if h == nil then
            h = { pi = pi, group = group, bucket = bucket, k = k, adds = {}, added = {}, removed = {} }
            hlls[ti][key] = h
          end
          if sign > 0 then
            if not h.added[v] then
              h.added[v] = true
              h.adds[#h.adds + 1] = v
            end
          else
            h.removed[v] = true
          end
        end
      end
    end
  end
end

local function bucketSetKey(rec)
  return P .. 'k:' .. int(math.floor(rec.t / tiers[1]) * tiers[1])
end

-- 1. Records: upsert or remove each, accumulating the cell deltas.
local upserts, deletes, unchanged, recordDelta = 0, 0, 0, 0
for _, r in ipairs(batch.records) do
  local id = r[1]
  local nextRec = nil
  if r[3] == false and r[2] >= cutoff then
    local m, x = {}, {}
    for i = 1, M do
      local v = r[5][i]
      if v == NULL then m[i] = false else m[i] = v end
    end
    for i = 1, K do
      local v = r[6][i]
      if v == NULL then x[i] = false else x[i] = v end
    end
    nextRec = { t = r[2], d = r[4], m = m, x = x }
  end
  local packed = nextRec and cmsgpack.pack(nextRec.t, nextRec.d, nextRec.m, nextRec.x)
  local stored = redis.call('HGET', recKey, id)
  if stored and stored == packed then
    unchanged = unchanged + 1
  else
    if stored then
      local t, d, m, x = cmsgpack.unpack(stored)
      local old = { t = t, d = d, m = m, x = x }
      contribute(old, -1)
      redis.call('SREM', bucketSetKey(old), id)
      recordDelta = recordDelta - 1
    end
    if nextRec then
      contribute(nextRec, 1)
      redis.call('HSET', recKey, id, packed)
      local setKey = bucketSetKey(nextRec)
      redis.call('SADD', setKey, id)
      redis.call('ZADD', P .. 'kz', math.floor(nextRec.t / tiers[1]) * tiers[1], setKey)
      recordDelta = recordDelta + 1
      upserts = upserts + 1
    elseif stored then
      redis.call('HDEL', recKey, id)
      deletes = deletes + 1
    else
      -- A tombstone (or an expired record) for something never held changes nothing.
      unchanged = unchanged + 1
    end
  end
end

-- Records of a base bucket, unpacked once per script run (for recomputing extremes).
local bucketRecords = {}
local function recordsIn(bucket)
  local cached = bucketRecords[bucket]
  if cached then return cached end
  cached = {}
  local ids = redis.call('SMEMBERS', P .. 'k:' .. int(bucket))
  for i = 1, #ids, 500 do
    local chunk = redis.call('HMGET', recKey, unpack(ids, i, math.min(i + 499, #ids)))
    for _, s in ipairs(chunk) do
      if s then
        local t, d, m, x = cmsgpack.unpack(s)
        cached[#cached + 1] = { t = t, d = d, m = m, x = x }
      end
    end
  end
  bucketRecords[bucket] = cached
  return cached
end

local function readCells(ti, pi, group, from, to)
  -- Cells of buckets [from, to) of one tier/projection/group, as lists of F numbers.
  local size = tiers[ti]
  local out = {}
  local idx, last = from / size, to / size - 1
  while idx <= last do
    local block = math.floor(idx / B)
    local stop = math.min(last, (block + 1) * B - 1)
    local s = redis.call('GETRANGE', blockKey(ti, pi, group, block), (idx - block * B) * cellBytes, (stop - block * B + 1) * cellBytes - 1)
    for j = 0, stop - idx do
      if #s >= (j + 1) * cellBytes then
        out[#out + 1] = { struct.unpack(cellFormat, s, j * cellBytes + 1) }
      end
    end
    idx = stop + 1
  end
  return out
end

local function recompute(ti, c, v)
  -- Exact min and max of a cell from what it now holds.
  for m = 1, M do
    v[4 + 4 * (m - 1)], v[5 + 4 * (m - 1)] = nil, nil
  end
  local function fold(m, lo, hi)
    local iMin, iMax = 4 + 4 * (m - 1), 5 + 4 * (m - 1)
    if v[iMin] == nil or lo < v[iMin] then v[iMin] = lo end
    if v[iMax] == nil or hi > v[iMax] then v[iMax] = hi end
  end
  if ti == 1 then
    for _, rec in ipairs(recordsIn(c.bucket)) do
      if groupOf(rec.d, c.pi) == c.group then
        for m = 1, M do
          if rec.m[m] ~= false then fold(m, rec.m[m], rec.m[m]) end
        end
      end
    end
  else
    for _, sub in ipairs(readCells(ti - 1, c.pi, c.group, c.bucket, c.bucket + tiers[ti])) do
      for m = 1, M do
        if sub[1] > 0 and sub[3 + 4 * (m - 1)] > 0 then fold(m, sub[4 + 4 * (m - 1)], sub[5 + 4 * (m - 1)]) end
      end
    end
  end
  for m = 1, M do
    if v[4 + 4 * (m - 1)] == nil then v[4 + 4 * (m - 1)], v[5 + 4 * (m - 1)] = 0, 0 end
  end
end

local registered = {}
local function register(key, spanEnd)
  if not registered[key] then
    registered[key] = true
    redis.call('ZADD', P .. 'keys', spanEnd, key)
  end
end

local version
if upserts + deletes > 0 then
  version = redis.call('HINCRBY', stateKey, 'version', 1)
else
  version = tonumber(redis.call('HGET', stateKey, 'version'))
end

-- 2. Cells, finest tier first: a coarser cell's extremes are recomputed from finer cells.
for ti = 1, #tiers do
  local size = tiers[ti]
  for _, c in pairs(cells[ti]) do
    local idx = c.bucket / size
    local block = math.floor(idx / B)
    local key = blockKey(ti, c.pi, c.group, block)
    local offset = (idx - block * B) * cellBytes
    local s = redis.call('GETRANGE', key, offset, offset + cellBytes - 1)
    local v
    if #s == cellBytes then
      v = { struct.unpack(cellFormat, s) }
      v[F + 1] = nil
    else
      v = {}
      for i = 1, F do v[i] = 0 end
    end
    local n = v[1] + c.n
    if n <= 0 then
      for i = 1, F do v[i] = 0 end
    else
      v[1] = n
      local stale = false
      for m = 1, M do
        local iSum, iNn, iMin, iMax = 2 + 4 * (m - 1), 3 + 4 * (m - 1), 4 + 4 * (m - 1), 5 + 4 * (m - 1)
        local before = v[iNn]
        local after = before + c.nn[m]
        if after <= 0 then
          v[iSum], v[iNn], v[iMin], v[iMax] = 0, 0, 0, 0
        else
          v[iSum], v[iNn] = v[iSum] + c.sum[m], after
          if c.remMin[m] ~= nil and before > 0 and (c.remMin[m] <= v[iMin] or c.remMax[m] >= v[iMax]) then
            stale = true
          end
          if c.addMin[m] ~= nil then
            if before > 0 then
              v[iMin] = math.min(v[iMin], c.addMin[m])
              v[iMax] = math.max(v[iMax], c.addMax[m])
            else
              v[iMin], v[iMax] = c.addMin[m], c.addMax[m]
            end
          end
        end
      end
      if stale then recompute(ti, c, v) end
    end
    redis.call('SETRANGE', key, offset, struct.pack(cellFormat, unpack(v, 1, F)))
    register(key, (block + 1) * B * size)
    if ti == 1 then
      if not registered['bv' .. block] then
        registered['bv' .. block] = true
        redis.call('HSET', P .. 'bv', int(block), version)
      end
    end
    local groupsKey = P .. 'g:' .. masks[c.pi]
    if not registered[groupsKey .. c.group] then
      registered[groupsKey .. c.group] = true
      redis.call('SADD', groupsKey, c.group)
    end
  end

  -- HyperLogLogs: add new values; rebuild those a value may have left.
  for key, h in pairs(hlls[ti]) do
    local dirty = false
    for v in pairs(h.removed) do
      if not h.added[v] then dirty = true break end
    end
    if dirty then
      redis.call('DEL', key)
      if ti == 1 then
        local values = {}
        for _, rec in ipairs(recordsIn(h.bucket)) do
          local v = rec.x[h.k]
          if v ~= false and groupOf(rec.d, h.pi) == h.group then values[#values + 1] = v end
        end
        for i = 1, #values, 500 do
          redis.call('PFADD', key, unpack(values, i, math.min(i + 499, #values)))
        end
      else
        local sources, fine = {}, tiers[ti - 1]
        for b = h.bucket, h.bucket + size - fine, fine do
          sources[#sources + 1] = hllKey(ti - 1, h.pi, h.k, b, h.group)
        end
        redis.call('PFMERGE', key, unpack(sources))
      end
    elseif #h.adds > 0 then
      for i = 1, #h.adds, 500 do
        redis.call('PFADD', key, unpack(h.adds, i, math.min(i + 499, #h.adds)))
      end
    end
    register(key, h.bucket + size)
  end
end

if batch.cursor ~= NULL and batch.cursor ~= nil then
  redis.call('HSET', stateKey, 'cursor', batch.cursor, 'cursorId', batch.cursorId)
end
redis.call('HINCRBY', stateKey, 'records', recordDelta)

return {
  'ok', tostring(version), tostring(upserts), tostring(deletes), tostring(unchanged),
  touchedFrom and int(touchedFrom) or '', touchedTo and int(touchedTo) or '',
}
