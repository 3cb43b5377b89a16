import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { buildApp } from '../../src/app';
import type { DatasetSpec } from '../../src/config/dataset';
import type { Config } from '../../src/config/load';
import type { SourceRecord } from '../../src/sources/types';
import { MemoryStore } from '../../src/store/memory';
import type { Store } from '../../src/store/types';
import { SyncManager } from '../../src/sync/manager';
import { datasetSpec } from '../helpers';
import { ArraySource } from '../sync/array-source';

export const T0 = Date.UTC(2026, 0, 5);
export const MIN = 60_000;

export interface Harness {
  app: FastifyInstance;
  source: ArraySource;
  store: Store;
  sync: SyncManager;
  spec: DatasetSpec;
  /** Moves the clock freshness is judged by. */
  clock: { now: number };
  syncNow: () => Promise<void>;
}

export function row(
  id: number,
  time: number,
  country: string,
  amount: number | null,
  cursor = id,
): SourceRecord {
  return {
    id: String(id),
    time,
    cursor: String(cursor),
    deleted: false,
    dims: [country, 'mobile'],
    metrics: [amount, 1],
    distinct: [`u${id}`],
  };
}

/** The real app on the embedded store, over an upstream the test controls. */
export async function harness(
  options: {
    apiKey?: string;
    rateLimitPerMinute?: number;
    store?: Store;
    logger?: Logger;
    spec?: DatasetSpec;
    grafanaLive?: Config['grafanaLive'];
    sseHeartbeatMs?: number;
    /** Sets the upstream up before the first sync runs. */
    upstream?: (source: ArraySource) => void;
  } = {},
): Promise<Harness> {
  const spec = options.spec ?? datasetSpec({ retention: '3650d' });
  const source = new ArraySource();
  options.upstream?.(source);
  const store = options.store ?? new MemoryStore();
  const logger = options.logger ?? pino({ level: 'silent' });
  const config: Config = {
    server: {
      host: '127.0.0.1',
      port: 0,
      apiKey: options.apiKey ?? '',
      rateLimitPerMinute: options.rateLimitPerMinute ?? 0,
    },
    redis: null,
    grafanaLive: options.grafanaLive ?? null,
    datasets: [spec],
    source: 'test',
  };
  const sync = new SyncManager([spec], () => source, store, logger, { backoff: { initialMs: 1, maxMs: 5 } });
  const clock = { now: T0 + 10 * MIN };
  const app = await buildApp({
    config,
    store,
    sync,
    logger,
    clock: () => clock.now,
    ...(options.sseHeartbeatMs ? { sseHeartbeatMs: options.sseHeartbeatMs } : {}),
  });
  await app.ready();
  const syncNow = () => sync.get(spec.name)!.syncNow();
  return { app, source, store, sync, spec, clock, syncNow };
}
