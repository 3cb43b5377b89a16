import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { resolveDataset, type DatasetSpec } from '../src/config/dataset';
import type { RawDataset } from '../src/config/schema';
import { MemoryStore } from '../src/store/memory';
import { RedisStore, type RedisStoreOptions } from '../src/store/redis';
import type { Store } from '../src/store/types';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0';
export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';

/** A key prefix no other test file shares, so tests never touch each other's keys. */
export function uniquePrefix(): string {
  return `lstest-${randomBytes(6).toString('hex')}`;
}

export function datasetSpec(overrides: Partial<RawDataset> = {}): DatasetSpec {
  return resolveDataset({
    name: 'events',
    source: { kind: 'demo', rate: 1, history: '1h', updateRatio: 0, deleteRatio: 0, seed: 1 },
    dimensions: ['country', 'device'],
    metrics: ['amount', 'duration_ms'],
    distinct: ['user_id'],
    resolution: '1m',
    sync: { interval: '5s', batchSize: 5000, lag: '0s', lookback: '0s' },
    staleAfter: '2m',
    retention: '3650d',
    ...overrides,
  });
}

/** A Redis store under a fresh prefix; `cleanup` deletes exactly the keys under it. */
export async function redisStore(options: RedisStoreOptions = {}): Promise<{
  store: RedisStore;
  prefix: string;
  cleanup: () => Promise<void>;
}> {
  const prefix = uniquePrefix();
  const store = await RedisStore.connect(REDIS_URL, prefix, options);
  return {
    store,
    prefix,
    cleanup: async () => {
      await deleteKeys(REDIS_URL, `${prefix}:*`);
      await store.close();
    },
  };
}

/** Both stores, for `describe.each`: a name, and a fresh empty store with what removes it. */
export const BOTH_STORES: [string, () => Promise<{ store: Store; cleanup: () => Promise<void> }>][] = [
  ['memory', async () => ({ store: new MemoryStore(), cleanup: async () => {} })],
  ['redis', () => redisStore()],
];

export async function deleteKeys(url: string, pattern: string): Promise<number> {
  const redis = new Redis(url);
  let removed = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) removed += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return removed;
}

/** Deterministic pseudo-random numbers for reproducible generated data. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
