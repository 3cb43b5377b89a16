--[==[
apply.lua: apply one batch of upstream records to a dataset and commit the new cursor,
atomically: either the whole batch and its cursor are applied, or nothing is.

KEYS[1]  the dataset's state hash: <prefix>{<dataset>}:state
         (gen, cursor, cursorId, version, records, trimmed). Every other key is derived
         from ARGV[1] and carries the same {<dataset>} hash tag, so they share one slot.
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

Redis calls are batched: records are read and written a few hundred at a time, and each
rollup block is read and written once per script, over the span of cells the batch touches.
]==]

local stateKey = KEYS[1]
local P = ARGV[1]
if redis.call('HGET', stateKey, 'gen') ~= ARGV[2] then
  return { 'lost' }
end

local L = cjson.decode(ARGV[3])
local batch = cjson.decode(ARGV[4])
local tiers, masks, dimsOf, F, M, K, B = L.tiers, L.masks, L.dims, L.F, L.M, L.K, L.B
local T, NP = #tiers, #masks
local cutoff = batch.cutoff
local NULL = cjson.null
local SEP = '\31'
local CHUNK = 500
local cellFormat = '<' .. string.rep('d', F)
local cellBytes = F * 8
local recKey = P .. 'rec'

local function int(n)
  return string.format('%.0f', n)
end

local function groupsOf(dims)
  -- The group key of every projection, computed once per record.
  local out = {}
  for pi = 1, NP do
    local parts = {}
    for i, d in ipairs(dimsOf[pi]) do
      parts[i] = dims[d]
    end
    out[pi] = table.concat(parts, SEP)
  end
  return out
end

local function blockKey(ti, pi, group, block)
  return P .. 'r:' .. int(tiers[ti]) .. ':' .. masks[pi] .. ':' .. group .. ':' .. int(block)
end

local function hllKey(ti, pi, k, bucket, group)
  return P .. 'h:' .. int(tiers[ti]) .. ':' .. masks[pi] .. ':' .. k .. ':' .. int(bucket) .. ':' .. group
end

local function unpackRecord(s)
  local t, d, m, x = cmsgpack.unpack(s)
  return { t = t, d = d, m = m, x = x, g = groupsOf(d) }
end

local function baseBucket(t)
  return math.floor(t / tiers[1]) * tiers[1]
end

-- Pending changes: cells[ti][pi][group][bucket] = delta; hlls[ti][pi][k][group][bucket] = adds/removals.
local cells, hlls = {}, {}
for ti = 1, T do
  cells[ti], hlls[ti] = {}, {}
  for pi = 1, NP do
    cells[ti][pi], hlls[ti][pi] = {}, {}
    for k = 1, K do hlls[ti][pi][k] = {} end
  end
end
local touchedFrom, touchedTo = nil, nil

local function contribute(rec, sign)
  local base = baseBucket(rec.t)
  if touchedFrom == nil or base < touchedFrom then touchedFrom = base end
  if touchedTo == nil or base > touchedTo then touchedTo = base end
  for ti = 1, T do
    local size = tiers[ti]
    local bucket = math.floor(rec.t / size) * size
    for pi = 1, NP do
      local group = rec.g[pi]
      local byGroup = cells[ti][pi]
      local byBucket = byGroup[group]
      if byBucket == nil then
        byBucket = {}
        byGroup[group] = byBucket
      end
      local c = byBucket[bucket]
      if c == nil then
        c = { n = 0, sum = {}, nn = {}, addMin = {}, addMax = {}, remMin = {}, remMax = {} }
        for m = 1, M do
          c.sum[m], c.nn[m] = 0, 0
        end
        byBucket[bucket] = c
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
          local byGroupH = hlls[ti][pi][k]
          local byBucketH = byGroupH[group]
          if byBucketH == nil then
            byBucketH = {}
            byGroupH[group] = byBucketH
          end
          local h = byBucketH[bucket]
          if h == nil then
            h = { adds = {}, added = {}, removed = {} }
            byBucketH[bucket] = h
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

-- 1. Records: upsert or remove each, accumulating the cell deltas. Stored records are read
-- in chunks up front; `current` follows each id through the batch (an id may come twice).
local records = batch.records
local ids = {}
for i, r in ipairs(records) do ids[i] = r[1] end
local original, current = {}, {}
for i = 1, #ids, CHUNK do
  local chunk = redis.call('HMGET', recKey, unpack(ids, i, math.min(i + CHUNK - 1, #ids)))
  for j = 1, math.min(CHUNK, #ids - i + 1) do
    local id = ids[i + j - 1]
    if original[id] == nil then
      original[id] = chunk[j] or false
      current[id] = original[id]
    end
  end
end

local upserts, deletes, unchanged = 0, 0, 0
for _, r in ipairs(records) do
  local id = r[1]
  local nextRec, packed = nil, false
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
    packed = cmsgpack.pack(nextRec.t, nextRec.d, nextRec.m, nextRec.x)
  end
  local stored = current[id]
  if stored == packed then
    -- The same record again (a lookback re-read), or a tombstone for something not held.
    unchanged = unchanged + 1
  else
    if stored then contribute(unpackRecord(stored), -1) end
    if nextRec then
      nextRec.g = groupsOf(nextRec.d)
      contribute(nextRec, 1)
      upserts = upserts + 1
    else
      deletes = deletes + 1
    end
    current[id] = packed
  end
end

-- Write what changed: records, and the base-bucket sets that index them.
local sets, setOrder = {}, {}
local function member(bucket, op, id)
  local s = sets[bucket]
  if s == nil then
    s = { add = {}, rem = {} }
    sets[bucket] = s
    setOrder[#setOrder + 1] = bucket
  end
  local list = s[op]
  list[#list + 1] = id
end
local writes, removals, recordDelta = {}, {}, 0
for id, before in pairs(original) do
  local after = current[id]
  if after ~= before then
    local from = before and baseBucket(cmsgpack.unpack(before)) or nil
    local to = after and baseBucket(cmsgpack.unpack(after)) or nil
    if after then
      writes[#writes + 1] = id
      writes[#writes + 1] = after
    else
      removals[#removals + 1] = id
    end
    if from ~= to then
      if from then member(from, 'rem', id) end
      if to then member(to, 'add', id) end
    end
    recordDelta = recordDelta + (after and 1 or 0) - (before and 1 or 0)
  end
end
for i = 1, #writes, 2 * CHUNK do
  redis.call('HSET', recKey, unpack(writes, i, math.min(i + 2 * CHUNK - 1, #writes)))
end
for i = 1, #removals, CHUNK do
  redis.call('HDEL', recKey, unpack(removals, i, math.min(i + CHUNK - 1, #removals)))
end
for _, bucket in ipairs(setOrder) do
  local s, key = sets[bucket], P .. 'k:' .. int(bucket)
  for i = 1, #s.rem, CHUNK do
    redis.call('SREM', key, unpack(s.rem, i, math.min(i + CHUNK - 1, #s.rem)))
  end
  for i = 1, #s.add, CHUNK do
    redis.call('SADD', key, unpack(s.add, i, math.min(i + CHUNK - 1, #s.add)))
  end
  if #s.add > 0 then redis.call('ZADD', P .. 'kz', bucket, key) end
end

-- Records of a base bucket, unpacked once per script run (for recomputing extremes).
local bucketRecords = {}
local function recordsIn(bucket)
  local cached = bucketRecords[bucket]
  if cached then return cached end
  cached = {}
  local members = redis.call('SMEMBERS', P .. 'k:' .. int(bucket))
  for i = 1, #members, CHUNK do
    local chunk = redis.call('HMGET', recKey, unpack(members, i, math.min(i + CHUNK - 1, #members)))
    for j = 1, math.min(CHUNK, #members - i + 1) do
      if chunk[j] then cached[#cached + 1] = unpackRecord(chunk[j]) end
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

local function recompute(ti, pi, group, bucket, v)
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
    for _, rec in ipairs(recordsIn(bucket)) do
      if rec.g[pi] == group then
        for m = 1, M do
          if rec.m[m] ~= false then fold(m, rec.m[m], rec.m[m]) end
        end
      end
    end
  else
    for _, sub in ipairs(readCells(ti - 1, pi, group, bucket, bucket + tiers[ti])) do
      for m = 1, M do
        if sub[1] > 0 and sub[3 + 4 * (m - 1)] > 0 then fold(m, sub[4 + 4 * (m - 1)], sub[5 + 4 * (m - 1)]) end
      end
    end
  end
  for m = 1, M do
    if v[4 + 4 * (m - 1)] == nil then v[4 + 4 * (m - 1)], v[5 + 4 * (m - 1)] = 0, 0 end
  end
end

local function applyDelta(ti, pi, group, bucket, c, v)
  -- v: the cell's F numbers as stored; updated in place.
  local n = v[1] + c.n
  if n <= 0 then
    for i = 1, F do v[i] = 0 end
    return
  end
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
  if stale then recompute(ti, pi, group, bucket, v) end
end

local version
if upserts + deletes > 0 then
  version = redis.call('HINCRBY', stateKey, 'version', 1)
else
  version = tonumber(redis.call('HGET', stateKey, 'version'))
end

local zeros = {}
for i = 1, F do zeros[i] = 0 end
local seenGroups, seenBlocks = {}, {}

-- 2. Cells, finest tier first: a coarser cell's extremes are recomputed from finer cells.
for ti = 1, T do
  local size = tiers[ti]
  for pi = 1, NP do
    for group, byBucket in pairs(cells[ti][pi]) do
      -- Gather the touched cells block by block, then read and write each block's span once.
      local blocks = {}
      for bucket, c in pairs(byBucket) do
        local idx = bucket / size
        local block = math.floor(idx / B)
        local b = blocks[block]
        if b == nil then
          b = { lo = B, hi = -1, cells = {} }
          blocks[block] = b
        end
        local slot = idx - block * B
        b.cells[slot] = { bucket = bucket, c = c }
        if slot < b.lo then b.lo = slot end
        if slot > b.hi then b.hi = slot end
      end
      for block, b in pairs(blocks) do
        local key = blockKey(ti, pi, group, block)
        local s = redis.call('GETRANGE', key, b.lo * cellBytes, (b.hi + 1) * cellBytes - 1)
        local out = {}
        for slot = b.lo, b.hi do
          local at = (slot - b.lo) * cellBytes
          local touched = b.cells[slot]
          if touched then
            local v
            if #s >= at + cellBytes then
              v = { struct.unpack(cellFormat, s, at + 1) }
              v[F + 1] = nil
            else
              v = { unpack(zeros) }
            end
            applyDelta(ti, pi, group, touched.bucket, touched.c, v)
            out[#out + 1] = struct.pack(cellFormat, unpack(v, 1, F))
          elseif #s >= at + cellBytes then
            out[#out + 1] = string.sub(s, at + 1, at + cellBytes)
          else
            out[#out + 1] = struct.pack(cellFormat, unpack(zeros))
          end
        end
        redis.call('SETRANGE', key, b.lo * cellBytes, table.concat(out))
        if ti == 1 and not seenBlocks[block] then
          seenBlocks[block] = true
          redis.call('HSET', P .. 'bv', int(block), version)
        end
      end
      local groupsKey = P .. 'g:' .. masks[pi]
      if not seenGroups[groupsKey .. SEP .. group] then
        seenGroups[groupsKey .. SEP .. group] = true
        redis.call('SADD', groupsKey, group)
      end
    end

    -- HyperLogLogs: add new values; rebuild those a value may have left.
    for k = 1, K do
      for group, byBucket in pairs(hlls[ti][pi][k]) do
        for bucket, h in pairs(byBucket) do
          local key = hllKey(ti, pi, k, bucket, group)
          local dirty = false
          for v in pairs(h.removed) do
            if not h.added[v] then
              dirty = true
              break
            end
          end
          if dirty then
            redis.call('DEL', key)
            if ti == 1 then
              local values = {}
              for _, rec in ipairs(recordsIn(bucket)) do
                local v = rec.x[k]
                if v ~= false and rec.g[pi] == group then values[#values + 1] = v end
              end
              for i = 1, #values, CHUNK do
                redis.call('PFADD', key, unpack(values, i, math.min(i + CHUNK - 1, #values)))
              end
            else
              local sources, fine = {}, tiers[ti - 1]
              for b = bucket, bucket + size - fine, fine do
                sources[#sources + 1] = hllKey(ti - 1, pi, k, b, group)
              end
              redis.call('PFMERGE', key, unpack(sources))
            end
          elseif #h.adds > 0 then
            for i = 1, #h.adds, CHUNK do
              redis.call('PFADD', key, unpack(h.adds, i, math.min(i + CHUNK - 1, #h.adds)))
            end
          end
        end
      end
    end
  end
end

if batch.cursor ~= NULL and batch.cursor ~= nil then
  redis.call('HSET', stateKey, 'cursor', batch.cursor, 'cursorId', batch.cursorId)
end
if recordDelta ~= 0 then redis.call('HINCRBY', stateKey, 'records', recordDelta) end

return {
  'ok', tostring(version), tostring(upserts), tostring(deletes), tostring(unchanged),
  touchedFrom and int(touchedFrom) or '', touchedTo and int(touchedTo) or '',
}
