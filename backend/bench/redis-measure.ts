/**
 * What the benchmark measures of Redis itself: commands slower than the SLOWLOG threshold,
 * memory by key family, and the issue 10 workload on a 4-dimension dataset.
 */
import { RedisStore } from '../src/store/redis';
import { masters, scanKeys, type RedisClient } from '../src/store/redis-client';
import { WIDE_PER_BUCKET, WideData, wideSpec } from '../test/integration/wide';

export interface SlowEntry {
  ms: number;
  command: string;
}

/** SLOWLOG entries since the last call (newest first; of every master of a cluster), then empty logs. */
export async function takeSlowlog(redis: RedisClient): Promise<SlowEntry[]> {
  const entries: [number, number, number, string[]][] = [];
  for (const node of masters(redis)) {
    entries.push(...((await node.slowlog('GET', 10_000)) as [number, number, number, string[]][]));
    await node.slowlog('RESET');
  }
  entries.sort((a, b) => b[1] - a[1]);
  return entries.map(([, , micros, args]) => ({
    ms: micros / 1000,
    command: args
      .slice(0, 2)
      .join(' ')
      .replace(/[^\x20-\x7e]/g, '·')
      .slice(0, 60),
  }));
}

export interface Family {
  family: string;
  keys: number;
  bytes: number;
}

/** The family of a key under a dataset's prefix: its kind, and the tier for rollups and sketches. */
function familyOf(rest: string): string {
  const [kind, tier] = rest.split(':');
  // Rollup blocks and sketches are named by their tier (`1m`, `1h`, `1d`).
  if (kind === 'r' || kind === 'h') return `${kind === 'r' ? 'rollup blocks' : 'sketches'} ${tier}`;
  if (kind === 'k') return 'bucket index k:';
  if (kind === 'rec') return 'records rec:';
  return kind ?? rest;
}

/**
 * Memory of a dataset's keys by family: every key counted, MEMORY USAGE asked of up to
 * `sample` random keys per family and scaled to the family (an aggregate's elements are
 * sampled too: 64 of them, as reading all of a million-field hash takes tens of ms).
 */
export async function memoryByFamily(
  redis: RedisClient,
  datasetPrefix: string,
  sample = 3000,
): Promise<Family[]> {
  const byFamily = new Map<string, string[]>();
  await scanKeys(
    redis,
    `${datasetPrefix}*`,
    async (keys) => {
      for (const key of keys) {
        const family = familyOf(key.slice(datasetPrefix.length));
        const list = byFamily.get(family);
        if (list) list.push(key);
        else byFamily.set(family, [key]);
      }
    },
    5000,
  );
  const out: Family[] = [];
  for (const [family, keys] of byFamily) {
    const picked =
      keys.length <= sample
        ? keys
        : Array.from({ length: sample }, () => keys[Math.floor(Math.random() * keys.length)]!);
    const pipeline = redis.pipeline();
    for (const key of picked) pipeline.memory('USAGE', key, 'SAMPLES', 64);
    const sizes = ((await pipeline.exec()) ?? []).map(([, v]) => Number(v ?? 0));
    const total = sizes.reduce((a, b) => a + b, 0);
    out.push({ family, keys: keys.length, bytes: (total / Math.max(1, picked.length)) * keys.length });
  }
  return out.sort((a, b) => b.bytes - a.bytes);
}

/**
 * Families summed by kind: records (the records and the indexes that find them), rollups,
 * distinct sketches, and the rest (state, versions, groups, events).
 */
export function kindsOf(families: Family[]): { kind: string; bytes: number }[] {
  const kinds = ['records', 'rollups', 'distinct sketches', 'other'];
  const bytes = new Map(kinds.map((k) => [k, 0]));
  for (const f of families) {
    const kind = /^(records|bucket index|rs$|kz$)/.test(f.family)
      ? 'records'
      : f.family.startsWith('rollup blocks')
        ? 'rollups'
        : f.family.startsWith('sketches')
          ? 'distinct sketches'
          : 'other';
    bytes.set(kind, bytes.get(kind)! + f.bytes);
  }
  return kinds.map((kind) => ({ kind, bytes: bytes.get(kind)! }));
}

/** Bytes of memory Redis uses (`used_memory`), summed over the masters of a cluster. */
export async function usedMemory(redis: RedisClient): Promise<number> {
  let total = 0;
  for (const node of masters(redis))
    total += Number(/used_memory:(\d+)/.exec(await node.info('memory'))?.[1] ?? 0);
  return total;
}

export interface WideResult {
  records: number;
  projections: number;
  backfillMs: number;
  updates: number;
  updatesMs: number;
  slowlog: SlowEntry[];
  memoryPerRecord: number;
  /** The same number of records with event times at random over 30 days: the sparse case. */
  spread: { backfillMs: number; memoryPerRecord: number };
}

/**
 * The issue 10 workload for Redis: a 4-dimension dataset backfilled in order (about 230
 * records per base bucket, batches of 5,000), then 5,000 random updates in one batch.
 */
export async function wideScenario(url: string, prefix: string, buckets: number): Promise<WideResult> {
  const store = await RedisStore.connect(url, prefix);
  try {
    const spec = wideSpec();
    await store.register(spec);
    // Writes of the sync path are fenced by the dataset's lease: take it, as the sync engine does.
    await store.acquireLease(spec.name, 'bench', 3_600_000);
    const { generation } = await store.resetDataset(spec.name);
    const data = new WideData(7, Date.UTC(2026, 0, 5));
    const apply = async (records: ReturnType<WideData['inserts']>) => {
      const result = await store.applyBatch(spec.name, { generation, records, position: null, cutoffMs: 0 });
      if (!result.applied) throw new Error(`wide batch not applied: ${result.reason}`);
    };
    const before = await usedMemory(store.redis);
    await takeSlowlog(store.redis);
    const total = buckets * WIDE_PER_BUCKET;
    let t = performance.now();
    for (let n = 0; n < total; n += 5000) await apply(data.inserts(Math.min(5000, total - n)));
    const backfillMs = performance.now() - t;
    const after = await usedMemory(store.redis);
    t = performance.now();
    await apply(data.updates(5000));
    const updatesMs = performance.now() - t;
    const spread = await spreadBackfill(store, total);
    return {
      records: total,
      projections: spec.layout.projections.length,
      backfillMs,
      updates: 5000,
      updatesMs,
      slowlog: await takeSlowlog(store.redis),
      memoryPerRecord: (after - before) / total,
      spread,
    };
  } finally {
    await store.close();
  }
}

/** Backfills `total` records of the 4-dimension dataset spread over 30 days into a dataset of its own. */
async function spreadBackfill(
  store: RedisStore,
  total: number,
): Promise<{ backfillMs: number; memoryPerRecord: number }> {
  const spec = wideSpec('wide30');
  await store.register(spec);
  await store.acquireLease(spec.name, 'bench', 3_600_000);
  const { generation } = await store.resetDataset(spec.name);
  const data = new WideData(8, Date.UTC(2026, 0, 5), WIDE_PER_BUCKET, 30 * 86_400_000);
  const before = Number(/used_memory:(\d+)/.exec(await store.redis.info('memory'))?.[1] ?? 0);
  const t = performance.now();
  for (let n = 0; n < total; n += 5000) {
    const records = data.inserts(Math.min(5000, total - n));
    const result = await store.applyBatch(spec.name, { generation, records, position: null, cutoffMs: 0 });
    if (!result.applied) throw new Error(`wide batch not applied: ${result.reason}`);
  }
  const backfillMs = performance.now() - t;
  const after = Number(/used_memory:(\d+)/.exec(await store.redis.info('memory'))?.[1] ?? 0);
  return { backfillMs, memoryPerRecord: (after - before) / total };
}
