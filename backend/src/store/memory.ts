import { randomUUID } from 'node:crypto';
import { CELL, projectionDimensions, type DatasetSpec } from '../config/dataset';
import type { SourceRecord } from '../sources/types';
import { decodeGroup, encodeGroup, encodeValue } from './groups';
import type {
  ApplyBatch,
  ApplyResult,
  DistinctRead,
  ResyncMark,
  RollupGroup,
  RollupRead,
  Store,
  SyncEvent,
  SyncRegion,
  SyncState,
} from './types';
import { STAMP_MAX_BLOCKS } from './types';

const EVENTS_KEPT = 1000;

interface Held {
  time: number;
  dims: string[];
  metrics: (number | null)[];
  distinct: (string | null)[];
  /** Canonical form, to recognise a re-read record that did not change. */
  signature: string;
}

/** Cells of one tier and projection: group key → bucket start → cell. */
type CellMap = Map<string, Map<number, Float64Array>>;
/** Distinct values of one tier, projection and field: `${group}|${bucket}` → value → records holding it. */
type DistinctMap = Map<string, Map<string, number>>;

interface DatasetData {
  spec: DatasetSpec;
  state: SyncState | null;
  records: Map<string, Held>;
  /** Base bucket start → ids of the records in it. */
  buckets: Map<number, Set<string>>;
  /** [tier][projection] */
  cells: CellMap[][];
  /** [tier][projection][distinct field] */
  distinct: DistinctMap[][][];
  /** Base block index → the version of the last batch that touched it. */
  blockVersions: Map<number, number>;
  events: SyncEvent[];
  regions: SyncRegion[];
  status: Record<string, unknown> | null;
}

/**
 * The embedded store: the same contract as the Redis store, held in this process.
 * Distinct counts are exact here (reference-counted values) where Redis keeps
 * HyperLogLogs; everything else matches to the bit.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory';
  private readonly datasets = new Map<string, DatasetData>();

  private data(name: string): DatasetData {
    const found = this.datasets.get(name);
    if (!found) throw new Error(`dataset ${name} is not registered with the store`);
    return found;
  }

  async register(spec: DatasetSpec): Promise<void> {
    if (this.datasets.has(spec.name)) {
      this.data(spec.name).spec = spec;
      return;
    }
    this.datasets.set(spec.name, {
      ...this.emptyData(spec),
      state: null,
      events: [],
      regions: [],
      status: null,
    });
  }

  private emptyData(spec: DatasetSpec) {
    const { tiers, projections } = spec.layout;
    return {
      spec,
      records: new Map<string, Held>(),
      blockVersions: new Map<number, number>(),
      buckets: new Map<number, Set<string>>(),
      cells: tiers.map(() => projections.map((): CellMap => new Map())),
      distinct: tiers.map(() => projections.map(() => spec.distinct.map((): DistinctMap => new Map()))),
    };
  }

  async readState(dataset: string): Promise<SyncState | null> {
    const state = this.data(dataset).state;
    return state && structuredClone(state);
  }

  async readGeneration(dataset: string): Promise<string | null> {
    return this.data(dataset).state?.generation ?? null;
  }

  async resetDataset(dataset: string, resync?: ResyncMark): Promise<SyncState> {
    const data = this.data(dataset);
    Object.assign(data, this.emptyData(data.spec));
    data.state = { generation: randomUUID(), position: null, version: 0, records: 0, resync: resync ?? null };
    return structuredClone(data.state);
  }

  async writeResync(dataset: string, generation: string, resync: ResyncMark | null): Promise<boolean> {
    const { state } = this.data(dataset);
    if (state?.generation !== generation) return false;
    state.resync = resync && { ...resync };
    return true;
  }

  /** Simulates losing everything (a flushed store) for tests of the resync path. */
  forget(dataset: string): void {
    const data = this.data(dataset);
    Object.assign(data, this.emptyData(data.spec), { state: null, events: [], regions: [], status: null });
  }

  async applyBatch(dataset: string, batch: ApplyBatch): Promise<ApplyResult> {
    const data = this.data(dataset);
    if (!data.state || data.state.generation !== batch.generation)
      return { applied: false, reason: 'state-lost' };
    const { spec } = data;
    const base = spec.layout.tiers[0]!;
    const touched = new Set<string>();
    let upserts = 0;
    let deletes = 0;
    let unchanged = 0;
    let touchedFrom: number | null = null;
    let touchedTo: number | null = null;
    const touchedBlocks = new Set<number>();
    const touch = (time: number) => {
      const bucket = Math.floor(time / base) * base;
      touchedBlocks.add(Math.floor(bucket / base / spec.layout.blockBuckets));
      touchedFrom = touchedFrom === null ? bucket : Math.min(touchedFrom, bucket);
      touchedTo = touchedTo === null ? bucket : Math.max(touchedTo, bucket);
    };

    for (const record of batch.records) {
      const next = !record.deleted && record.time >= batch.cutoffMs ? hold(record) : null;
      const old = data.records.get(record.id);
      if ((old && next && old.signature === next.signature) || (!old && !next)) {
        unchanged++;
        continue;
      }
      if (old) {
        this.contribute(data, old, -1, touched);
        data.buckets.get(Math.floor(old.time / base) * base)?.delete(record.id);
        data.records.delete(record.id);
        touch(old.time);
      }
      if (next) {
        this.contribute(data, next, 1, touched);
        const bucket = Math.floor(next.time / base) * base;
        let ids = data.buckets.get(bucket);
        if (!ids) data.buckets.set(bucket, (ids = new Set()));
        ids.add(record.id);
        data.records.set(record.id, next);
        touch(next.time);
        upserts++;
      } else {
        deletes++;
      }
    }
    this.recomputeExtremes(data, touched);

    const state = data.state;
    if (upserts + deletes > 0) state.version++;
    for (const block of touchedBlocks) data.blockVersions.set(block, state.version);
    if (batch.position) state.position = { ...batch.position };
    state.records = data.records.size;
    return { applied: true, version: state.version, upserts, deletes, unchanged, touchedFrom, touchedTo };
  }

  private contribute(data: DatasetData, rec: Held, sign: 1 | -1, stale: Set<string>): void {
    const { spec } = data;
    const { tiers, projections, fieldCount } = spec.layout;
    tiers.forEach((size, ti) => {
      const bucket = Math.floor(rec.time / size) * size;
      projections.forEach((mask, pi) => {
        const group = groupKey(rec.dims, mask, spec.dimensions.length);
        const byGroup = data.cells[ti]![pi]!;
        let byBucket = byGroup.get(group);
        if (!byBucket) byGroup.set(group, (byBucket = new Map()));
        let cell = byBucket.get(bucket);
        if (!cell) byBucket.set(bucket, (cell = new Float64Array(fieldCount)));
        cell[CELL.count] = cell[CELL.count]! + sign;
        rec.metrics.forEach((v, m) => {
          if (v === null) return;
          const before = cell[CELL.nonNull(m)]!;
          cell[CELL.sum(m)] = cell[CELL.sum(m)]! + sign * v;
          cell[CELL.nonNull(m)] = before + sign;
          if (sign > 0) {
            cell[CELL.min(m)] = before > 0 ? Math.min(cell[CELL.min(m)]!, v) : v;
            cell[CELL.max(m)] = before > 0 ? Math.max(cell[CELL.max(m)]!, v) : v;
          } else if (v <= cell[CELL.min(m)]! || v >= cell[CELL.max(m)]!) {
            stale.add(`${ti}|${pi}|${bucket}|${group}`);
          }
          if (cell[CELL.nonNull(m)]! <= 0) {
            cell[CELL.sum(m)] = cell[CELL.nonNull(m)] = cell[CELL.min(m)] = cell[CELL.max(m)] = 0;
          }
        });
        if (cell[CELL.count]! <= 0) byBucket.delete(bucket);
        rec.distinct.forEach((v, k) => {
          if (v === null) return;
          const sets = data.distinct[ti]![pi]![k]!;
          const id = `${group}|${bucket}`;
          let counts = sets.get(id);
          if (!counts) sets.set(id, (counts = new Map()));
          const n = (counts.get(v) ?? 0) + sign;
          if (n > 0) counts.set(v, n);
          else counts.delete(v);
        });
      });
    });
  }

  /** Exact min/max of cells that lost a value that may have been their extreme, finest tier first. */
  private recomputeExtremes(data: DatasetData, stale: Set<string>): void {
    const { spec } = data;
    const { tiers, projections } = spec.layout;
    const ordered = [...stale].map((s) => s.split('|')).sort((a, b) => Number(a[0]) - Number(b[0]));
    for (const [tiText, piText, bucketText, ...rest] of ordered) {
      const ti = Number(tiText);
      const pi = Number(piText);
      const bucket = Number(bucketText);
      const group = rest.join('|');
      const cell = data.cells[ti]![pi]!.get(group)?.get(bucket);
      if (!cell) continue;
      const lo: (number | null)[] = spec.metrics.map(() => null);
      const hi: (number | null)[] = spec.metrics.map(() => null);
      const fold = (m: number, min: number, max: number) => {
        lo[m] = lo[m] === null ? min : Math.min(lo[m]!, min);
        hi[m] = hi[m] === null ? max : Math.max(hi[m]!, max);
      };
      if (ti === 0) {
        for (const id of data.buckets.get(bucket) ?? []) {
          const rec = data.records.get(id)!;
          if (groupKey(rec.dims, projections[pi]!, spec.dimensions.length) !== group) continue;
          rec.metrics.forEach((v, m) => v !== null && fold(m, v, v));
        }
      } else {
        const fine = tiers[ti - 1]!;
        const finer = data.cells[ti - 1]![pi]!.get(group);
        for (let b = bucket; b < bucket + tiers[ti]!; b += fine) {
          const sub = finer?.get(b);
          if (!sub) continue;
          spec.metrics.forEach((_, m) => {
            if (sub[CELL.nonNull(m)]! > 0) fold(m, sub[CELL.min(m)]!, sub[CELL.max(m)]!);
          });
        }
      }
      spec.metrics.forEach((_, m) => {
        cell[CELL.min(m)] = lo[m] ?? 0;
        cell[CELL.max(m)] = hi[m] ?? 0;
      });
    }
  }

  async trim(dataset: string, cutoffMs: number): Promise<number> {
    const data = this.data(dataset);
    const { tiers, blockBuckets } = data.spec.layout;
    let removed = 0;
    for (const [bucket, ids] of data.buckets) {
      if (bucket + tiers[0]! > cutoffMs) continue;
      for (const id of ids) if (data.records.delete(id)) removed++;
      data.buckets.delete(bucket);
    }
    // Rollups go by whole blocks, as in Redis, so both stores answer old ranges alike.
    tiers.forEach((size, ti) => {
      const span = size * blockBuckets;
      const expired = (bucket: number) => (Math.floor(bucket / span) + 1) * span <= cutoffMs;
      for (const byGroup of data.cells[ti]!) {
        for (const byBucket of byGroup.values())
          for (const b of byBucket.keys()) if (expired(b)) byBucket.delete(b);
      }
      for (const byField of data.distinct[ti]!) {
        for (const sets of byField) {
          for (const id of sets.keys())
            if (Number(id.slice(id.lastIndexOf('|') + 1)) + size <= cutoffMs) sets.delete(id);
        }
      }
    });
    if (data.state) data.state.records = data.records.size;
    return removed;
  }

  async dataStamp(dataset: string, from: number, to: number): Promise<string> {
    const { spec, state, blockVersions } = this.data(dataset);
    const blockMs = spec.resolutionMs * spec.layout.blockBuckets;
    const first = Math.floor(from / blockMs);
    const last = Math.floor((to - 1) / blockMs);
    if (last - first + 1 > STAMP_MAX_BLOCKS) return `${state?.generation ?? 'none'}:v${state?.version ?? 0}`;
    let newest = 0;
    for (let block = first; block <= last; block++) newest = Math.max(newest, blockVersions.get(block) ?? 0);
    return `${state?.generation ?? 'none'}:${newest}`;
  }

  async readGroups(dataset: string, projection: number): Promise<(string | null)[][]> {
    const { spec, cells } = this.data(dataset);
    const pi = spec.layout.projections.indexOf(projection);
    const size = projectionDimensions(projection, spec.dimensions.length).length;
    return [...cells[0]![pi]!.keys()].map((k) => decodeGroup(k, size));
  }

  async readRollups(dataset: string, read: RollupRead): Promise<RollupGroup[]> {
    const { spec, cells } = this.data(dataset);
    const { fieldCount: F, tiers, projections } = spec.layout;
    const byGroup = cells[tiers.indexOf(read.tierMs)]![projections.indexOf(read.projection)]!;
    const size = projectionDimensions(read.projection, spec.dimensions.length).length;
    const count = Math.max(0, Math.ceil((read.to - read.from) / read.tierMs));
    const out: RollupGroup[] = [];
    for (const [key, byBucket] of byGroup) {
      const values = decodeGroup(key, size);
      if (read.accept && !read.accept(values)) continue;
      const dense = new Float64Array(count * F);
      let any = false;
      for (const [bucket, cell] of byBucket) {
        if (bucket < read.from || bucket >= read.to) continue;
        dense.set(cell, ((bucket - read.from) / read.tierMs) * F);
        any = true;
      }
      if (any) out.push({ values, cells: dense });
    }
    return out;
  }

  async countDistinct(dataset: string, read: DistinctRead): Promise<number[]> {
    const { spec, distinct } = this.data(dataset);
    const { tiers, projections } = spec.layout;
    const sets = distinct[tiers.indexOf(read.tierMs)]![projections.indexOf(read.projection)]![read.field]!;
    const groups = read.groups.map(encodeGroup);
    return read.ranges.map(([from, to]) => {
      const union = new Set<string>();
      for (let b = from; b < to; b += read.tierMs) {
        for (const g of groups) for (const v of sets.get(`${g}|${b}`)?.keys() ?? []) union.add(v);
      }
      return union.size;
    });
  }

  async appendEvent(dataset: string, event: SyncEvent): Promise<void> {
    const { events } = this.data(dataset);
    events.unshift(event);
    events.length = Math.min(events.length, EVENTS_KEPT);
  }

  async readEvents(dataset: string, from: number, to: number, limit: number): Promise<SyncEvent[]> {
    return this.data(dataset)
      .events.filter((e) => e.endedAt >= from && e.startedAt <= to)
      .slice(0, limit);
  }

  async appendRegion(dataset: string, region: SyncRegion): Promise<void> {
    const { regions } = this.data(dataset);
    regions.unshift(structuredClone(region));
    regions.length = Math.min(regions.length, EVENTS_KEPT);
  }

  async readRegions(dataset: string, from: number, to: number, limit: number): Promise<SyncRegion[]> {
    return this.data(dataset)
      .regions.filter((r) => r.endedAt >= from && r.startedAt <= to)
      .slice(0, limit)
      .map((r) => structuredClone(r));
  }

  async writeStatus(dataset: string, status: Record<string, unknown>): Promise<void> {
    this.data(dataset).status = structuredClone(status);
  }

  async readStatus(dataset: string): Promise<Record<string, unknown> | null> {
    const { status } = this.data(dataset);
    return status && structuredClone(status);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}

function hold(record: SourceRecord): Held {
  const dims = record.dims.map(encodeValue);
  const metrics = record.metrics.map((v) => (v === null || !Number.isFinite(v) ? null : v));
  const distinct = record.distinct;
  return {
    time: record.time,
    dims,
    metrics,
    distinct,
    signature: JSON.stringify([record.time, dims, metrics, distinct]),
  };
}

function groupKey(encodedDims: string[], mask: number, dimensionCount: number): string {
  return projectionDimensions(mask, dimensionCount)
    .map((i) => encodedDims[i]!)
    .join('\x1f');
}
