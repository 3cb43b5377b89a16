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
 *   batch replaces it, and the batch did not remove every value the cell held) the cell is
 *   repaired from what it now holds: the records of its base bucket (base tier) or the finer
 *   tier's cells (1h from 1m, 1d from 1h), a bounded read.
 * - Distinct values are reference counts per cell, kept from the layout's `distinctTier` on:
 *   `net` says how many more (or fewer) records hold each value. A store with exact sets
 *   applies them; a store with sketches that cannot forget (HyperLogLog) gets the cell's
 *   exact values after the batch (the finest tier that keeps distinct values: read from the
 *   records of the base buckets under the cell) or is told to merge the finer tier's sketches
 *   (coarser tiers) instead.
 *
 * Every planned cell is the cell's whole new value, computed from the stored one: writing it
 * twice is writing it once, which is what makes a replayed write harmless.
 */
import { CELL, projectionDimensions, type DatasetSpec } from '../config/dataset';
import type { SourceRecord } from '../sources/types';
import { decodeContribution, encodeHeld, holdRecord, type Contribution, type Held } from './held';

/** One rollup cell: tier and projection are indices into the dataset's layout. */
export interface CellRef {
  tier: number;
  projection: number;
  /** The projection's dimension values, encoded as a group key (encodeGroup). */
  group: string;
  bucket: number;
}

/** Consecutive cells of one tier, projection and group, from bucket `from` on. */
export interface CellSpan {
  tier: number;
  projection: number;
  group: string;
  from: number;
  count: number;
}

/** What a batch does to one id: its held version before and after (null: not held). */
export interface Change {
  id: string;
  before: Contribution | null;
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
   * records: `values` (finest distinct tier) are the cell's exact values now; `merge` (coarser tiers)
   * asks for the union of the finer tier's non-empty cells (with how many records each holds).
   */
  rebuild?: { values: string[] } | { merge: { ref: CellRef; records: number }[] };
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
  /** Stored cells of each span, `count × fieldCount` doubles, zeros where a cell is empty. */
  spans(spans: CellSpan[]): Promise<Float64Array[]>;
  /** The records held in these base buckets before the batch: bucket → id → stored form. */
  bucketRecords(buckets: number[]): Promise<Map<number, Map<string, string>>>;
}

export interface PlanOptions {
  /** The store keeps exact distinct sets (reference counts) and needs no rebuilds. */
  exactDistinct: boolean;
}

interface Compiled {
  tiers: number[];
  distinctTier: number;
  dimsOf: number[][];
  F: number;
  D: number;
  M: number;
  K: number;
  blockMs: number;
}

const compiledCache = new WeakMap<DatasetSpec, Compiled>();

function compile(spec: DatasetSpec): Compiled {
  let found = compiledCache.get(spec);
  if (!found) {
    const { tiers, projections, fieldCount, blockBuckets, distinctTier } = spec.layout;
    found = {
      tiers,
      distinctTier,
      dimsOf: projections.map((mask) => projectionDimensions(mask, spec.dimensions.length)),
      F: fieldCount,
      D: spec.dimensions.length,
      M: spec.metrics.length,
      K: spec.distinct.length,
      blockMs: tiers[0]! * blockBuckets,
    };
    compiledCache.set(spec, found);
  }
  return found;
}

/**
 * Values by cell: [tier][projection] → group → bucket. Nested rather than keyed by one
 * string, so a batch that touches millions of cell contributions builds no string per cell.
 */
class CellTable<T> {
  private readonly byTier: Map<string, Map<number, T>>[][];

  constructor(tiers: number, projections: number) {
    this.byTier = Array.from({ length: tiers }, () => Array.from({ length: projections }, () => new Map()));
  }

  groups(tier: number, projection: number, group: string, create: true): Map<number, T>;
  groups(tier: number, projection: number, group: string, create?: false): Map<number, T> | undefined;
  groups(tier: number, projection: number, group: string, create = false): Map<number, T> | undefined {
    const byGroup = this.byTier[tier]![projection]!;
    let byBucket = byGroup.get(group);
    if (!byBucket && create) byGroup.set(group, (byBucket = new Map()));
    return byBucket;
  }

  get(ref: CellRef): T | undefined {
    return this.groups(ref.tier, ref.projection, ref.group)?.get(ref.bucket);
  }
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
  spec: DatasetSpec,
  records: readonly SourceRecord[],
  cutoffMs: number,
  stored: ReadonlyMap<string, string | null>,
): { changes: Change[]; upserts: number; deletes: number; unchanged: number } {
  const { D, M, K } = compile(spec);
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
    changes.push({ id, before: old === null ? null : decodeContribution(old, D, M, K), after, encoded });
    if (after) upserts++;
    else deletes++;
  }
  return { changes, upserts, deletes, unchanged };
}

/**
 * The sum of the contributions a batch adds to and removes from one cell: `v` holds the
 * count, then per metric the sum, the non-null count, the least and greatest value added,
 * the least and greatest value removed (±Infinity when none) and how many non-null values
 * were added.
 */
interface Delta {
  ref: CellRef;
  v: Float64Array;
  /** Per distinct field, value → net change in records holding it; null until touched. */
  distinct: (Map<string, number> | null)[] | null;
}

const D_SUM = (m: number) => 1 + 7 * m;
const D_NN = (m: number) => 2 + 7 * m;
const D_ADD_MIN = (m: number) => 3 + 7 * m;
const D_ADD_MAX = (m: number) => 4 + 7 * m;
const D_REM_MIN = (m: number) => 5 + 7 * m;
const D_REM_MAX = (m: number) => 6 + 7 * m;
const D_NN_ADDED = (m: number) => 7 + 7 * m;

function newDelta(ref: CellRef, M: number): Delta {
  const v = new Float64Array(1 + 7 * M);
  for (let m = 0; m < M; m++) {
    v[D_ADD_MIN(m)] = v[D_REM_MIN(m)] = Infinity;
    v[D_ADD_MAX(m)] = v[D_REM_MAX(m)] = -Infinity;
  }
  return { ref, v, distinct: null };
}

/** Every cell's delta, finest tier first: each change's old version subtracted, its new one added. */
function cellDeltas(
  spec: DatasetSpec,
  changes: readonly Change[],
): { table: CellTable<Delta>; list: Delta[][] } {
  const { tiers, dimsOf, M, K, distinctTier } = compile(spec);
  const table = new CellTable<Delta>(tiers.length, dimsOf.length);
  const list: Delta[][] = tiers.map(() => []);
  const contribute = (held: Contribution, sign: 1 | -1) => {
    const groups = dimsOf.map((idx) => idx.map((i) => held.dims[i]!).join('\x1f'));
    for (let ti = 0; ti < tiers.length; ti++) {
      const size = tiers[ti]!;
      const bucket = Math.floor(held.time / size) * size;
      for (let pi = 0; pi < groups.length; pi++) {
        const group = groups[pi]!;
        const byBucket = table.groups(ti, pi, group, true);
        let d = byBucket.get(bucket);
        if (!d) {
          byBucket.set(bucket, (d = newDelta({ tier: ti, projection: pi, group, bucket }, M)));
          list[ti]!.push(d);
        }
        const v = d.v;
        v[0] = v[0]! + sign;
        for (let m = 0; m < M; m++) {
          const x = held.metrics[m];
          if (x === null || x === undefined) continue;
          v[D_SUM(m)] = v[D_SUM(m)]! + sign * x;
          v[D_NN(m)] = v[D_NN(m)]! + sign;
          if (sign > 0) {
            v[D_NN_ADDED(m)] = v[D_NN_ADDED(m)]! + 1;
            if (x < v[D_ADD_MIN(m)]!) v[D_ADD_MIN(m)] = x;
            if (x > v[D_ADD_MAX(m)]!) v[D_ADD_MAX(m)] = x;
          } else {
            if (x < v[D_REM_MIN(m)]!) v[D_REM_MIN(m)] = x;
            if (x > v[D_REM_MAX(m)]!) v[D_REM_MAX(m)] = x;
          }
        }
        for (let k = 0; k < (ti >= distinctTier ? K : 0); k++) {
          const x = held.distinct[k];
          if (x === null || x === undefined) continue;
          d.distinct ??= new Array<Map<string, number> | null>(K).fill(null);
          const net = (d.distinct[k] ??= new Map());
          const n = (net.get(x) ?? 0) + sign;
          if (n === 0) net.delete(x);
          else net.set(x, n);
        }
      }
    }
  };
  for (const c of changes) {
    if (c.before) contribute(c.before, -1);
    if (c.after) contribute(c.after, 1);
  }
  return { table, list };
}

/**
 * A cell's new value from its stored one and the batch's delta, and whether its min or max
 * needs a repair: a removed value was an extreme and no added value is at least as extreme.
 */
function mergeCell(
  F: number,
  M: number,
  stored: Float64Array | null,
  d: Delta,
): { value: Float64Array; stale: boolean } {
  const value = new Float64Array(F);
  if (stored) value.set(stored.subarray(0, F));
  const dv = d.v;
  const count = value[CELL.count]! + dv[0]!;
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
    const after = before + dv[D_NN(m)]!;
    if (after <= 0) {
      value[iSum] = value[iNn] = value[iMin] = value[iMax] = 0;
      continue;
    }
    value[iSum] = value[iSum]! + dv[D_SUM(m)]!;
    value[iNn] = after;
    const addMin = dv[D_ADD_MIN(m)]!;
    const addMax = dv[D_ADD_MAX(m)]!;
    // Empty before, or every value it held was removed (as many values are left as were
    // added): the added values are all there is, and their extremes are exact.
    if (before <= 0 || after === dv[D_NN_ADDED(m)]!) {
      value[iMin] = addMin;
      value[iMax] = addMax;
      continue;
    }
    // The stored extreme is some held value, so a removed value can only equal it; an added
    // value at least as extreme keeps the merged value exact.
    const remMin = dv[D_REM_MIN(m)]!;
    const remMax = dv[D_REM_MAX(m)]!;
    if (remMin <= value[iMin]! && !(addMin <= remMin)) stale = true;
    if (remMax >= value[iMax]! && !(addMax >= remMax)) stale = true;
    value[iMin] = Math.min(value[iMin]!, addMin);
    value[iMax] = Math.max(value[iMax]!, addMax);
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

/** Plans a batch against what the store holds. */
export async function planBatch(
  spec: DatasetSpec,
  records: readonly SourceRecord[],
  cutoffMs: number,
  reads: PlanReads,
  options: PlanOptions,
): Promise<Plan> {
  const { tiers, F, D, M, K, blockMs, distinctTier } = compile(spec);
  const base = tiers[0]!;
  const ids = batchIds(records);
  const storedForms = ids.length > 0 ? await reads.records(ids) : [];
  const stored = new Map(ids.map((id, i) => [id, storedForms[i] ?? null]));
  const { changes, upserts, deletes, unchanged } = diffBatch(spec, records, cutoffMs, stored);

  let touchedFrom: number | null = null;
  let touchedTo: number | null = null;
  const blocks = new Set<number>();
  let recordDelta = 0;
  for (const c of changes) {
    recordDelta += (c.after ? 1 : 0) - (c.before ? 1 : 0);
    for (const held of [c.before, c.after]) {
      if (!held) continue;
      const bucket = Math.floor(held.time / base) * base;
      if (touchedFrom === null || bucket < touchedFrom) touchedFrom = bucket;
      if (touchedTo === null || bucket > touchedTo) touchedTo = bucket;
      blocks.add(Math.floor(held.time / blockMs));
    }
  }

  const deltas = cellDeltas(spec, changes);
  const ordered = deltas.list.flat();
  const storedCells = ordered.length > 0 ? await reads.cells(ordered.map((d) => d.ref)) : [];
  const planned = new CellTable<PlannedCell>(tiers.length, compile(spec).dimsOf.length);
  const cells: PlannedCell[] = [];
  const staleCells: PlannedCell[] = [];
  ordered.forEach((d, i) => {
    const { value, stale } = mergeCell(F, M, storedCells[i] ?? null, d);
    const cell = { ref: d.ref, value };
    planned.groups(d.ref.tier, d.ref.projection, d.ref.group, true).set(d.ref.bucket, cell);
    cells.push(cell);
    if (stale) staleCells.push(cell);
  });

  // Distinct values: net changes, and for sketches, which cells must be rebuilt.
  const distinct: PlannedDistinct[] = [];
  const rebuildRecords: PlannedDistinct[] = [];
  const rebuildCoarse: PlannedDistinct[] = [];
  ordered.forEach((d, i) => {
    if (!d.distinct) return;
    const empty = cells[i]!.value[CELL.count]! <= 0;
    for (let k = 0; k < K; k++) {
      const net = d.distinct[k];
      if (!net || (net.size === 0 && !empty)) continue;
      const entry: PlannedDistinct = { ref: d.ref, field: k, net, empty };
      distinct.push(entry);
      if (options.exactDistinct || empty) continue;
      for (const n of net.values()) {
        if (n >= 0) continue;
        (d.ref.tier === distinctTier ? rebuildRecords : rebuildCoarse).push(entry);
        break;
      }
    }
  });

  // Repairs read the records of base buckets and the finer cells under coarse ones.
  const needBuckets = new Set<number>();
  for (const cell of staleCells) if (cell.ref.tier === 0) needBuckets.add(cell.ref.bucket);
  const underCell = (ref: CellRef) =>
    Array.from({ length: tiers[ref.tier]! / base }, (_, j) => ref.bucket + j * base);
  for (const entry of rebuildRecords) for (const b of underCell(entry.ref)) needBuckets.add(b);
  const coarse = [
    ...staleCells.filter((c) => c.ref.tier > 0).map((c) => c.ref),
    ...rebuildCoarse.map((e) => e.ref),
  ];
  if (needBuckets.size === 0 && coarse.length === 0) return finish();
  const spanOf = (ref: CellRef): CellSpan => ({
    tier: ref.tier - 1,
    projection: ref.projection,
    group: ref.group,
    from: ref.bucket,
    count: tiers[ref.tier]! / tiers[ref.tier - 1]!,
  });
  const [bucketRecords, spans] = await Promise.all([
    needBuckets.size > 0 ? reads.bucketRecords([...needBuckets]) : new Map<number, Map<string, string>>(),
    coarse.length > 0 ? reads.spans(coarse.map(spanOf)) : [],
  ]);
  const finerStored = new CellTable<Float64Array>(tiers.length, compile(spec).dimsOf.length);
  coarse.forEach((ref, i) =>
    finerStored.groups(ref.tier, ref.projection, ref.group, true).set(ref.bucket, spans[i]!),
  );

  // The records of a base bucket as they stand after the batch, and their groups by projection.
  const changed = new Map(changes.map((c) => [c.id, c]));
  const arrivals = new Map<number, Contribution[]>();
  for (const c of changes) {
    if (!c.after) continue;
    const bucket = Math.floor(c.after.time / base) * base;
    const list = arrivals.get(bucket);
    if (list) list.push(c.after);
    else arrivals.set(bucket, [c.after]);
  }
  const dimsOf = compile(spec).dimsOf;
  const heldAfter = new Map<number, { held: Contribution[]; byProjection: Map<string, Contribution[]>[] }>();
  /** The records of a base bucket after the batch that are in a group of a projection. */
  const members = (bucket: number, projection: number, group: string): Contribution[] => {
    let at = heldAfter.get(bucket);
    if (!at) {
      const held: Contribution[] = [];
      for (const [id, form] of bucketRecords.get(bucket) ?? [])
        if (!changed.has(id)) held.push(decodeContribution(form, D, M, K));
      held.push(...(arrivals.get(bucket) ?? []));
      heldAfter.set(bucket, (at = { held, byProjection: [] }));
    }
    let byGroup = at.byProjection[projection];
    if (!byGroup) {
      byGroup = at.byProjection[projection] = new Map();
      for (const h of at.held) {
        const g = dimsOf[projection]!.map((i) => h.dims[i]!).join('\x1f');
        const list = byGroup.get(g);
        if (list) list.push(h);
        else byGroup.set(g, [h]);
      }
    }
    return byGroup.get(group) ?? [];
  };
  for (const cell of staleCells) {
    if (cell.ref.tier === 0)
      foldExtremes(
        M,
        cell.value,
        recordCells(M, members(cell.ref.bucket, cell.ref.projection, cell.ref.group)),
      );
  }
  for (const entry of rebuildRecords) {
    const values = new Set<string>();
    for (const bucket of underCell(entry.ref)) {
      for (const h of members(bucket, entry.ref.projection, entry.ref.group)) {
        const v = h.distinct[entry.field];
        if (v !== null && v !== undefined) values.add(v);
      }
    }
    entry.rebuild = { values: [...values] };
  }

  // Coarser tiers, finest first, from the finer tier as it stands after the batch: the
  // planned finer cells where the batch changed them, the stored ones elsewhere.
  function* finer(ref: CellRef): Generator<{ ref: CellRef; value: Float64Array }> {
    const span = spanOf(ref);
    const read = finerStored.get(ref)!;
    const plannedFiner = planned.groups(span.tier, span.projection, span.group);
    const size = tiers[span.tier]!;
    for (let j = 0; j < span.count; j++) {
      const bucket = span.from + j * size;
      const at: CellRef = { tier: span.tier, projection: span.projection, group: span.group, bucket };
      yield { ref: at, value: plannedFiner?.get(bucket)?.value ?? read.subarray(j * F, (j + 1) * F) };
    }
  }
  for (const cell of staleCells) {
    if (cell.ref.tier > 0)
      foldExtremes(
        M,
        cell.value,
        [...finer(cell.ref)].map((f) => f.value),
      );
  }
  for (const entry of rebuildCoarse) {
    entry.rebuild = {
      merge: [...finer(entry.ref)]
        .filter((f) => f.value[CELL.count]! > 0)
        .map((f) => ({ ref: f.ref, records: f.value[CELL.count]! })),
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
      cells,
      distinct,
      blocks: [...blocks],
      recordDelta,
    };
  }
}

/** Records as one-record cells, for folding their extremes. */
function* recordCells(M: number, records: Contribution[]): Generator<Float64Array> {
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
