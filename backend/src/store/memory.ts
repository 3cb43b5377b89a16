import { randomUUID } from 'node:crypto';
import { CELL, projectionDimensions, type DatasetSpec } from '../config/dataset';
import { decodeGroup, encodeGroup } from './groups';
import { planBatch, type PlanReads } from './rules';
import type {
  ApplyBatch,
  ApplyResult,
  DistinctRead,
  RecordScan,
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

/** Cells of one tier and projection: group key → bucket start → cell. */
type CellMap = Map<string, Map<number, Float64Array>>;
/** Distinct values of one tier, projection and field: `${group}|${bucket}` → value → records holding it. */
type DistinctMap = Map<string, Map<string, number>>;

interface DatasetData {
  spec: DatasetSpec;
  state: SyncState | null;
  /** id → stored form (encodeHeld). */
  records: Map<string, string>;
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
  /** The ids held when the latest scanRecords listing began (see scanRecords). */
  scan: { token: string; ids: string[] } | null;
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
      scan: null,
    });
  }

  private emptyData(spec: DatasetSpec) {
    const { tiers, projections } = spec.layout;
    return {
      spec,
      records: new Map<string, string>(),
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

  /** A batch applies in one step here: nothing is ever left half applied. */
  async finishPending(): Promise<void> {}

  async writeResync(dataset: string, generation: string, resync: ResyncMark | null): Promise<boolean> {
    const { state } = this.data(dataset);
    if (state?.generation !== generation) return false;
    state.resync = resync && { ...resync };
    return true;
  }

  /** Simulates losing everything (a flushed store) for tests of the resync path. */
  forget(dataset: string): void {
    const data = this.data(dataset);
    Object.assign(data, this.emptyData(data.spec), {
      state: null,
      events: [],
      regions: [],
      status: null,
      scan: null,
    });
  }

  async applyBatch(dataset: string, batch: ApplyBatch): Promise<ApplyResult> {
    const data = this.data(dataset);
    if (!data.state || data.state.generation !== batch.generation)
      return { applied: false, reason: 'state-lost' };
    const plan = await planBatch(data.spec, batch.records, batch.cutoffMs, this.reads(data), {
      exactDistinct: true,
    });
    const { spec } = data;
    const base = spec.layout.tiers[0]!;
    for (const c of plan.changes) {
      if (c.before) data.buckets.get(Math.floor(c.before.time / base) * base)?.delete(c.id);
      if (c.after && c.encoded) {
        const bucket = Math.floor(c.after.time / base) * base;
        let ids = data.buckets.get(bucket);
        if (!ids) data.buckets.set(bucket, (ids = new Set()));
        ids.add(c.id);
        data.records.set(c.id, c.encoded);
      } else {
        data.records.delete(c.id);
      }
    }
    for (const { ref, value } of plan.cells) {
      const byGroup = data.cells[ref.tier]![ref.projection]!;
      let byBucket = byGroup.get(ref.group);
      if (!byBucket) byGroup.set(ref.group, (byBucket = new Map()));
      if (value[CELL.count]! > 0) byBucket.set(ref.bucket, value);
      else byBucket.delete(ref.bucket);
    }
    for (const { ref, field, net, empty } of plan.distinct) {
      const sets = data.distinct[ref.tier]![ref.projection]![field]!;
      const id = `${ref.group}|${ref.bucket}`;
      let counts = sets.get(id);
      if (!counts) sets.set(id, (counts = new Map()));
      for (const [v, n] of net) {
        const now = (counts.get(v) ?? 0) + n;
        if (now > 0) counts.set(v, now);
        else counts.delete(v);
      }
      if (empty || counts.size === 0) sets.delete(id);
    }

    const state = data.state;
    if (plan.changes.length > 0) state.version++;
    for (const block of plan.blocks) data.blockVersions.set(block, state.version);
    if (batch.position) state.position = { ...batch.position };
    state.records = data.records.size;
    return {
      applied: true,
      version: state.version,
      upserts: plan.upserts,
      deletes: plan.deletes,
      unchanged: plan.unchanged,
      touchedFrom: plan.touchedFrom,
      touchedTo: plan.touchedTo,
    };
  }

  /** What the rules read, straight from the maps. */
  private reads(data: DatasetData): PlanReads {
    return {
      records: async (ids) => ids.map((id) => data.records.get(id) ?? null),
      cells: async (refs) =>
        refs.map((r) => data.cells[r.tier]![r.projection]!.get(r.group)?.get(r.bucket) ?? null),
      spans: async (spans) =>
        spans.map((span) => {
          const { fieldCount: F, tiers } = data.spec.layout;
          const out = new Float64Array(span.count * F);
          const byBucket = data.cells[span.tier]![span.projection]!.get(span.group);
          for (let j = 0; j < span.count; j++) {
            const cell = byBucket?.get(span.from + j * tiers[span.tier]!);
            if (cell) out.set(cell, j * F);
          }
          return out;
        }),
      bucketRecords: async (buckets) =>
        new Map(
          buckets.map((b) => [
            b,
            new Map([...(data.buckets.get(b) ?? [])].map((id) => [id, data.records.get(id)!])),
          ]),
        ),
    };
  }

  /**
   * A listing walks the ids held when it began (one copy of the keys, kept for the latest
   * listing only), so a record held throughout is never skipped however the map changes
   * meanwhile; ids gone by the time their step comes are left out. A cursor of an older
   * listing starts a new one.
   */
  async scanRecords(dataset: string, cursor: string, count: number): Promise<RecordScan> {
    const data = this.data(dataset);
    const [token, offsetText] = cursor.split(':');
    let offset = Number(offsetText);
    let scan = data.scan;
    if (cursor === '0' || !scan || scan.token !== token || !Number.isInteger(offset)) {
      scan = data.scan = { token: randomUUID(), ids: [...data.records.keys()] };
      offset = 0;
    }
    const end = Math.min(scan.ids.length, offset + Math.max(1, count));
    const records = scan.ids
      .slice(offset, end)
      .filter((id) => data.records.has(id))
      .map((id) => ({ id }));
    if (end < scan.ids.length) return { cursor: `${scan.token}:${end}`, records };
    data.scan = null;
    return { cursor: '0', records };
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
