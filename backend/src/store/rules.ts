/**
 * The rules of incremental rollups, once for every store: what a batch of upstream records
 * does to the records held and to every rollup cell. A store only reads what the rules ask
 * for (the stored versions of the batch's records, the cells they touch, and now and then
 * the records of a bucket or the finer cells under a coarse one) and writes the plan back.
 *
 * - An id that a batch holds more than once counts once, in its last version.
 * - A record is held while it is not deleted and its event time is within retention; an
 *   update subtracts the held version's contribution from every cell it was counted in and
 *   adds the new one; a tombstone (or a move out of retention) only subtracts; a record
 *   delivered again unchanged changes nothing.
 * - count, sum and the non-null count are exact sums of contributions. min and max cannot
 *   be subtracted: when a removed value was a cell's extreme (and nothing added in the same
 *   batch replaces it) the cell is repaired from what it now holds: the records of its base
 *   bucket (base tier) or the finer tier's cells (1h from 1m, 1d from 1h), a bounded read.
 * - Distinct values are reference counts per cell: `net` says how many more (or fewer)
 *   records hold each value. A store with exact sets applies them; a store with sketches
 *   that cannot forget (HyperLogLog) gets the cell's exact values after the batch (base
 *   tier) or is told to merge the finer tier's sketches (coarser tiers) instead.
 *
 * Every planned cell is the cell's whole new value, computed from the stored one: writing it
 * twice is writing it once, which is what makes a replayed write harmless.
 */
import { CELL, projectionDimensions, type DatasetSpec } from '../config/dataset';
import type { SourceRecord } from '../sources/types';
import { encodeValue } from './groups';

/** A record as the stores hold it: exactly what its contributions follow from. */
export interface Held {
  time: number;
  /** Dimension values as group keys spell them (encodeValue). */
  dims: string[];
  /** null for a NULL or non-finite value. */
  metrics: (number | null)[];
  distinct: (string | null)[];
}

export function holdRecord(record: SourceRecord): Held {
  return {
    time: record.time,
    dims: record.dims.map(encodeValue),
    metrics: record.metrics.map((v) => (v === null || !Number.isFinite(v) ? null : v)),
    distinct: record.distinct.map((v) => v ?? null),
  };
}

/** The stored form of a held record; equal forms mean an unchanged record. */
export function encodeHeld(held: Held): string {
  return JSON.stringify([held.time, held.dims, held.metrics, held.distinct]);
}

export function decodeHeld(text: string): Held {
  const [time, dims, metrics, distinct] = JSON.parse(text) as [
    number,
    string[],
    (number | null)[],
    (string | null)[],
  ];
  return { time, dims, metrics, distinct };
}

/** One rollup cell: tier and projection are indices into the dataset's layout. */
export interface CellRef {
  tier: number;
  projection: number;
  /** The projection's dimension values, encoded as a group key (encodeGroup). */
  group: string;
  bucket: number;
}

export function cellId(tier: number, projection: number, bucket: number, group: string): string {
  return `${tier}:${projection}:${bucket}:${group}`;
}

/** What a batch does to one id: its held version before and after (null: not held). */
export interface Change {
  id: string;
  before: Held | null;
  after: Held | null;
  /** encodeHeld(after), or null when the record is no longer held. */
  encoded: string | null;
}

export interface PlannedCell {
  ref: CellRef;
  /** The cell's new value, `fieldCount` doubles; all zeros when it no longer holds records. */
  value: Float64Array;
}

export interface PlannedDistinct {
  ref: CellRef;
  field: number;
  /** Change in how many of the cell's records hold each value (zero entries left out). */
  net: Map<string, number>;
  /** The cell holds no records any more. */
  empty: boolean;
  /**
   * For sketches that cannot forget, set when a value may have left a cell that still holds
   * records: `values` (base tier) are the cell's exact values now; `merge` (coarser tiers)
   * asks for the union of the finer tier's cells, of which `sources` are the non-empty ones.
   */
  rebuild?: { values: string[] } | { merge: CellRef[] };
}

export interface Plan {
  /** Ids newly held or held in a new version. */
  upserts: number;
  /** Ids no longer held. */
  deletes: number;
  /** Ids whose held version does not change (a re-read, or a tombstone for an id not held). */
  unchanged: number;
  /** First and last base bucket touched, or null when nothing changes. */
  touchedFrom: number | null;
  touchedTo: number | null;
  changes: Change[];
  /** Every cell the batch changes, finest tier first. */
  cells: PlannedCell[];
  /** Every cell whose distinct values change, finest tier first. */
  distinct: PlannedDistinct[];
  /** Base blocks (bucket index / blockBuckets) that hold a changed cell. */
  blocks: number[];
  /** Change in the number of records held. */
  recordDelta: number;
}

/** What the rules ask of a store; each call is one batched read. */
export interface PlanReads {
  /** Stored forms (encodeHeld) of these ids, null for ids not held. */
  records(ids: string[]): Promise<(string | null)[]>;
  /** Stored cells, null for an empty one. */
  cells(refs: CellRef[]): Promise<(Float64Array | null)[]>;
  /** The records held in these base buckets before the batch: bucket → id → stored form. */
  bucketRecords(buckets: number[]): Promise<Map<number, Map<string, string>>>;
}

export interface PlanOptions {
  /** The store keeps exact distinct sets (reference counts) and needs no rebuilds. */
  exactDistinct: boolean;
}

interface Compiled {
  tiers: number[];
  dimsOf: number[][];
  F: number;
  M: number;
  K: number;
  blockMs: number;
}

const compiledCache = new WeakMap<DatasetSpec, Compiled>();

function compile(spec: DatasetSpec): Compiled {
  let found = compiledCache.get(spec);
  if (!found) {
    const { tiers, projections, fieldCount, blockBuckets } = spec.layout;
    found = {
      tiers,
      dimsOf: projections.map((mask) => projectionDimensions(mask, spec.dimensions.length)),
      F: fieldCount,
      M: spec.metrics.length,
      K: spec.distinct.length,
      blockMs: tiers[0]! * blockBuckets,
    };
    compiledCache.set(spec, found);
  }
  return found;
}

/** The group key of a held record in every projection. */
export function groupsOf(spec: DatasetSpec, dims: readonly string[]): string[] {
  return compile(spec).dimsOf.map((idx) => idx.map((i) => dims[i]!).join('\x1f'));
}

/** The distinct ids of a batch, in order of first appearance. */
export function batchIds(records: readonly SourceRecord[]): string[] {
  return [...new Set(records.map((r) => r.id))];
}

/**
 * What a batch does to each id, given the stored form of every id it holds: the last version
 * of an id wins; a version equal to the stored one changes nothing.
 */
export function diffBatch(
  records: readonly SourceRecord[],
  cutoffMs: number,
  stored: ReadonlyMap<string, string | null>,
): { changes: Change[]; upserts: number; deletes: number; unchanged: number } {
  const last = new Map<string, SourceRecord>();
  for (const r of records) last.set(r.id, r);
  const changes: Change[] = [];
  let upserts = 0;
  let deletes = 0;
  let unchanged = 0;
  for (const [id, r] of last) {
    const after = !r.deleted && r.time >= cutoffMs ? holdRecord(r) : null;
    const encoded = after && encodeHeld(after);
    const old = stored.get(id) ?? null;
    if (encoded === old) {
      unchanged++;
      continue;
    }
    changes.push({ id, before: old === null ? null : decodeHeld(old), after, encoded });
    if (after) upserts++;
    else deletes++;
  }
  return { changes, upserts, deletes, unchanged };
}

/** The sum of the contributions a batch adds to and removes from one cell. */
interface Delta {
  ref: CellRef;
  count: number;
  sum: Float64Array;
  nonNull: Float64Array;
  addMin: Float64Array;
  addMax: Float64Array;
  remMin: Float64Array;
  remMax: Float64Array;
  /** Per distinct field, value → net change in records holding it; null until touched. */
  distinct: (Map<string, number> | null)[];
}

function newDelta(ref: CellRef, M: number, K: number): Delta {
  return {
    ref,
    count: 0,
    sum: new Float64Array(M),
    nonNull: new Float64Array(M),
    addMin: new Float64Array(M).fill(Infinity),
    addMax: new Float64Array(M).fill(-Infinity),
    remMin: new Float64Array(M).fill(Infinity),
    remMax: new Float64Array(M).fill(-Infinity),
    distinct: new Array<Map<string, number> | null>(K).fill(null),
  };
}

/** Every cell's delta: each change's old version subtracted and its new version added. */
export function cellDeltas(spec: DatasetSpec, changes: readonly Change[]): Map<string, Delta> {
  const { tiers, dimsOf, M, K } = compile(spec);
  const deltas = new Map<string, Delta>();
  const contribute = (held: Held, sign: 1 | -1) => {
    const groups = dimsOf.map((idx) => idx.map((i) => held.dims[i]!).join('\x1f'));
    for (let ti = 0; ti < tiers.length; ti++) {
      const size = tiers[ti]!;
      const bucket = Math.floor(held.time / size) * size;
      for (let pi = 0; pi < groups.length; pi++) {
        const group = groups[pi]!;
        const id = cellId(ti, pi, bucket, group);
        let d = deltas.get(id);
        if (!d) deltas.set(id, (d = newDelta({ tier: ti, projection: pi, group, bucket }, M, K)));
        d.count += sign;
        for (let m = 0; m < M; m++) {
          const v = held.metrics[m];
          if (v === null || v === undefined) continue;
          d.sum[m] = d.sum[m]! + sign * v;
          d.nonNull[m] = d.nonNull[m]! + sign;
          if (sign > 0) {
            if (v < d.addMin[m]!) d.addMin[m] = v;
            if (v > d.addMax[m]!) d.addMax[m] = v;
          } else {
            if (v < d.remMin[m]!) d.remMin[m] = v;
            if (v > d.remMax[m]!) d.remMax[m] = v;
          }
        }
        for (let k = 0; k < K; k++) {
          const v = held.distinct[k];
          if (v === null || v === undefined) continue;
          const net = (d.distinct[k] ??= new Map());
          const n = (net.get(v) ?? 0) + sign;
          if (n === 0) net.delete(v);
          else net.set(v, n);
        }
      }
    }
  };
  for (const c of changes) {
    if (c.before) contribute(c.before, -1);
    if (c.after) contribute(c.after, 1);
  }
  return deltas;
}

/**
 * A cell's new value from its stored one and the batch's delta, and whether its min or max
 * needs a repair: a removed value was an extreme and no added value is at least as extreme.
 */
export function mergeCell(
  spec: DatasetSpec,
  stored: Float64Array | null,
  d: Delta,
): { value: Float64Array; stale: boolean } {
  const { F, M } = compile(spec);
  const value = new Float64Array(F);
  if (stored) value.set(stored.subarray(0, F));
  const count = value[CELL.count]! + d.count;
  // A count at or below zero can only come from data removed behind the rules' back (a
  // trimmed block): the cell is empty, never negative.
  if (count <= 0) return { value: new Float64Array(F), stale: false };
  value[CELL.count] = count;
  let stale = false;
  for (let m = 0; m < M; m++) {
    const iSum = CELL.sum(m);
    const iNn = CELL.nonNull(m);
    const iMin = CELL.min(m);
    const iMax = CELL.max(m);
    const before = value[iNn]!;
    const after = before + d.nonNull[m]!;
    if (after <= 0) {
      value[iSum] = value[iNn] = value[iMin] = value[iMax] = 0;
      continue;
    }
    value[iSum] = value[iSum]! + d.sum[m]!;
    value[iNn] = after;
    if (before <= 0) {
      value[iMin] = d.addMin[m]!;
      value[iMax] = d.addMax[m]!;
      continue;
    }
    // The stored extreme is some held value, so a removed value can only equal it; an added
    // value at least as extreme keeps the merged value exact.
    if (d.remMin[m]! <= value[iMin]! && !(d.addMin[m]! <= d.remMin[m]!)) stale = true;
    if (d.remMax[m]! >= value[iMax]! && !(d.addMax[m]! >= d.remMax[m]!)) stale = true;
    value[iMin] = Math.min(value[iMin]!, d.addMin[m]!);
    value[iMax] = Math.max(value[iMax]!, d.addMax[m]!);
  }
  return { value, stale };
}

/** Folds min and max of cells into `into` (whose count and sums are already right). */
function foldExtremes(M: number, into: Float64Array, sources: Iterable<Float64Array>): void {
  const lo = new Float64Array(M).fill(Infinity);
  const hi = new Float64Array(M).fill(-Infinity);
  for (const s of sources) {
    if (s[CELL.count]! <= 0) continue;
    for (let m = 0; m < M; m++) {
      if (s[CELL.nonNull(m)]! <= 0) continue;
      if (s[CELL.min(m)]! < lo[m]!) lo[m] = s[CELL.min(m)]!;
      if (s[CELL.max(m)]! > hi[m]!) hi[m] = s[CELL.max(m)]!;
    }
  }
  for (let m = 0; m < M; m++) {
    const has = into[CELL.nonNull(m)]! > 0 && lo[m]! <= hi[m]!;
    into[CELL.min(m)] = has ? lo[m]! : 0;
    into[CELL.max(m)] = has ? hi[m]! : 0;
  }
}

/** The finer tier's cells that make up a coarse one. */
function finerRefs(tiers: number[], ref: CellRef): CellRef[] {
  const fine = tiers[ref.tier - 1]!;
  const out: CellRef[] = [];
  for (let b = ref.bucket; b < ref.bucket + tiers[ref.tier]!; b += fine) {
    out.push({ tier: ref.tier - 1, projection: ref.projection, group: ref.group, bucket: b });
  }
  return out;
}

const refId = (r: CellRef) => cellId(r.tier, r.projection, r.bucket, r.group);

/** Plans a batch against what the store holds. */
export async function planBatch(
  spec: DatasetSpec,
  records: readonly SourceRecord[],
  cutoffMs: number,
  reads: PlanReads,
  options: PlanOptions,
): Promise<Plan> {
  const { tiers, M, K, blockMs } = compile(spec);
  const base = tiers[0]!;
  const ids = batchIds(records);
  const storedForms = ids.length > 0 ? await reads.records(ids) : [];
  const stored = new Map(ids.map((id, i) => [id, storedForms[i] ?? null]));
  const { changes, upserts, deletes, unchanged } = diffBatch(records, cutoffMs, stored);

  let touchedFrom: number | null = null;
  let touchedTo: number | null = null;
  const blocks = new Set<number>();
  for (const c of changes) {
    for (const held of [c.before, c.after]) {
      if (!held) continue;
      const bucket = Math.floor(held.time / base) * base;
      if (touchedFrom === null || bucket < touchedFrom) touchedFrom = bucket;
      if (touchedTo === null || bucket > touchedTo) touchedTo = bucket;
      blocks.add(Math.floor(held.time / blockMs));
    }
  }

  const deltas = [...cellDeltas(spec, changes).values()].sort((a, b) => a.ref.tier - b.ref.tier);
  const storedCells = deltas.length > 0 ? await reads.cells(deltas.map((d) => d.ref)) : [];
  const planned = new Map<string, PlannedCell>();
  const staleCells: PlannedCell[] = [];
  deltas.forEach((d, i) => {
    const { value, stale } = mergeCell(spec, storedCells[i] ?? null, d);
    const cell = { ref: d.ref, value };
    planned.set(refId(d.ref), cell);
    if (stale) staleCells.push(cell);
  });

  // Distinct values: net changes, and for sketches, which cells must be rebuilt.
  const distinct: PlannedDistinct[] = [];
  const rebuildBase: PlannedDistinct[] = [];
  const rebuildCoarse: PlannedDistinct[] = [];
  for (const d of deltas) {
    const empty = planned.get(refId(d.ref))!.value[CELL.count]! <= 0;
    for (let k = 0; k < K; k++) {
      const net = d.distinct[k];
      if (!net || (net.size === 0 && !empty)) continue;
      const entry: PlannedDistinct = { ref: d.ref, field: k, net, empty };
      distinct.push(entry);
      if (options.exactDistinct || empty) continue;
      for (const n of net.values()) {
        if (n >= 0) continue;
        (d.ref.tier === 0 ? rebuildBase : rebuildCoarse).push(entry);
        break;
      }
    }
  }

  // Repairs read the records of base buckets and the finer cells under coarse ones.
  const needBuckets = new Set<number>();
  const needFiner = new Map<string, CellRef>();
  const wantFiner = (ref: CellRef) => {
    for (const f of finerRefs(tiers, ref)) {
      const id = refId(f);
      if (!planned.has(id)) needFiner.set(id, f);
    }
  };
  for (const cell of staleCells) {
    if (cell.ref.tier === 0) needBuckets.add(cell.ref.bucket);
    else wantFiner(cell.ref);
  }
  for (const entry of rebuildBase) needBuckets.add(entry.ref.bucket);
  for (const entry of rebuildCoarse) wantFiner(entry.ref);
  if (needBuckets.size === 0 && needFiner.size === 0) {
    return finish();
  }
  const finerList = [...needFiner.values()];
  const [bucketRecords, finerCells] = await Promise.all([
    needBuckets.size > 0 ? reads.bucketRecords([...needBuckets]) : new Map<number, Map<string, string>>(),
    finerList.length > 0 ? reads.cells(finerList) : [],
  ]);
  const finer = new Map<string, Float64Array | null>();
  finerList.forEach((ref, i) => finer.set(refId(ref), finerCells[i] ?? null));

  // Base tier: the records of each bucket as they stand after the batch.
  const byBucket = new Map<number, { minmax: PlannedCell[]; distinct: PlannedDistinct[] }>();
  const slot = (bucket: number) => {
    let s = byBucket.get(bucket);
    if (!s) byBucket.set(bucket, (s = { minmax: [], distinct: [] }));
    return s;
  };
  for (const cell of staleCells) if (cell.ref.tier === 0) slot(cell.ref.bucket).minmax.push(cell);
  for (const entry of rebuildBase) slot(entry.ref.bucket).distinct.push(entry);
  const changed = new Map(changes.map((c) => [c.id, c]));
  for (const [bucket, wanted] of byBucket) {
    const held: Held[] = [];
    for (const [id, form] of bucketRecords.get(bucket) ?? []) {
      if (!changed.has(id)) held.push(decodeHeld(form));
    }
    for (const c of changes) {
      if (c.after && Math.floor(c.after.time / base) * base === bucket) held.push(c.after);
    }
    const projections = new Set([...wanted.minmax, ...wanted.distinct].map((x) => x.ref.projection));
    const members = new Map<string, Held[]>();
    for (const h of held) {
      const groups = groupsOf(spec, h.dims);
      for (const pi of projections) {
        const key = `${pi}:${groups[pi]!}`;
        let list = members.get(key);
        if (!list) members.set(key, (list = []));
        list.push(h);
      }
    }
    for (const cell of wanted.minmax) {
      const list = members.get(`${cell.ref.projection}:${cell.ref.group}`) ?? [];
      foldExtremes(M, cell.value, recordCells(M, list));
    }
    for (const entry of wanted.distinct) {
      const values = new Set<string>();
      for (const h of members.get(`${entry.ref.projection}:${entry.ref.group}`) ?? []) {
        const v = h.distinct[entry.field];
        if (v !== null && v !== undefined) values.add(v);
      }
      entry.rebuild = { values: [...values] };
    }
  }

  // Coarser tiers, finest first, from the finer tier as it stands after the batch.
  const finerValue = (ref: CellRef) => planned.get(refId(ref))?.value ?? finer.get(refId(ref)) ?? null;
  for (const cell of staleCells) {
    if (cell.ref.tier === 0) continue;
    const sources: Float64Array[] = [];
    for (const f of finerRefs(tiers, cell.ref)) {
      const v = finerValue(f);
      if (v) sources.push(v);
    }
    foldExtremes(M, cell.value, sources);
  }
  for (const entry of rebuildCoarse) {
    entry.rebuild = {
      merge: finerRefs(tiers, entry.ref).filter((f) => (finerValue(f)?.[CELL.count] ?? 0) > 0),
    };
  }
  return finish();

  function finish(): Plan {
    return {
      upserts,
      deletes,
      unchanged,
      touchedFrom,
      touchedTo,
      changes,
      cells: [...planned.values()],
      distinct,
      blocks: [...blocks],
      recordDelta: changes.reduce((n, c) => n + (c.after ? 1 : 0) - (c.before ? 1 : 0), 0),
    };
  }
}

/** Records as one-record cells, for folding their extremes. */
function* recordCells(M: number, records: Held[]): Generator<Float64Array> {
  const cell = new Float64Array(1 + 4 * M);
  for (const h of records) {
    cell[CELL.count] = 1;
    for (let m = 0; m < M; m++) {
      const v = h.metrics[m];
      const has = v !== null && v !== undefined;
      cell[CELL.nonNull(m)] = has ? 1 : 0;
      cell[CELL.min(m)] = cell[CELL.max(m)] = has ? v : 0;
    }
    yield cell;
  }
}
