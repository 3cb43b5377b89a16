import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';
import { pino } from 'pino';
import { resolveDataset, type DatasetSpec } from '../../src/config/dataset';
import type { RawDataset } from '../../src/config/schema';
import { runMetricsQuery, type MetricsQuery } from '../../src/query/engine';
import { PostgresSource } from '../../src/sources/postgres';
import type { ApplyBatch, Store } from '../../src/store/types';
import { SyncEngine, type EngineOptions } from '../../src/sync/engine';
import { PG_URL } from '../helpers';

export { freePort, ThrowawayCluster, ThrowawayRedis } from '../servers';

export { PG_URL };
export const silent = pino({ level: 'silent' });
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

/**
 * A PostgreSQL schema of one test file's own, with a random name; `drop` removes exactly it.
 * `sql` runs on a small pool, so a test may hold a transaction open on `pool.connect()`.
 */
/** The events table of issue 2 (the benchmark loads the same one). */
export function eventsTableSql(name: string): string {
  return `CREATE TABLE ${name} (
    id bigserial PRIMARY KEY,
    ts timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    deleted_at timestamptz,
    country text,
    device text,
    amount numeric(12, 2),
    duration_ms int,
    user_id text)`;
}

export class PgSchema {
  readonly name = `ls_it_${randomBytes(6).toString('hex')}`;
  readonly pool: Pool;

  constructor(url = PG_URL) {
    this.pool = new Pool({ connectionString: url, max: 4 });
    this.pool.on('error', () => undefined);
  }

  get events(): string {
    return `${this.name}.events`;
  }

  async create(): Promise<void> {
    await this.pool.query(`CREATE SCHEMA ${this.name}`);
  }

  async drop(): Promise<void> {
    try {
      await this.pool.query(`DROP SCHEMA IF EXISTS ${this.name} CASCADE`);
    } finally {
      await this.pool.end();
    }
  }

  async sql<T = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
    return (await this.pool.query(text, values)).rows as T[];
  }

  /**
   * The events table of issue 2, with the trigger an application would have so that every
   * UPDATE moves updated_at forward.
   */
  async createEvents(table = 'events'): Promise<string> {
    const name = `${this.name}.${table}`;
    await this.sql(eventsTableSql(name));
    await this.sql(`
      CREATE FUNCTION ${this.name}.touch_${table}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
          NEW.updated_at := clock_timestamp();
        END IF;
        RETURN NEW;
      END $$`);
    await this.sql(
      `CREATE TRIGGER touch BEFORE UPDATE ON ${name} FOR EACH ROW EXECUTE FUNCTION ${this.name}.touch_${table}()`,
    );
    await this.sql(`CREATE INDEX ON ${name} (updated_at, id)`);
    return name;
  }
}

/** Skewed countries (US most), three devices, NULLs sprinkled in, as SQL expressions over random(). */
export const COUNTRY_SQL = `(ARRAY['US','US','US','US','US','DE','DE','DE','FR','FR','JP','JP','BR','IN','GB','MX','NG','CA','AU',NULL])[1 + floor(random() * 20)::int]`;
export const DEVICE_SQL = `(ARRAY['mobile','mobile','mobile','mobile','desktop','desktop','desktop','tablet'])[1 + floor(random() * 8)::int]`;

export interface EventsOverrides {
  name?: string;
  batchSize?: number;
  lookback?: string;
  lag?: string;
  resolution?: string;
  retention?: string;
  distinctFrom?: string;
}

export function eventsSpec(table: string, overrides: EventsOverrides = {}): DatasetSpec {
  return resolveDataset(eventsDataset(table, overrides));
}

/** The `events` dataset over `table` as a configuration file declares it (the service processes read it so). */
export function eventsDataset(table: string, overrides: EventsOverrides = {}): RawDataset {
  return {
    name: overrides.name ?? 'events',
    source: {
      kind: 'postgres',
      url: PG_URL,
      table,
      id: 'id',
      time: 'ts',
      cursor: 'updated_at',
      deleted: 'deleted_at',
      poolSize: 2,
      statementTimeout: '60s',
    },
    dimensions: ['country', 'device'],
    metrics: ['amount', 'duration_ms'],
    distinct: ['user_id'],
    resolution: overrides.resolution ?? '1m',
    sync: {
      interval: '1h',
      batchSize: overrides.batchSize ?? 5000,
      lag: overrides.lag ?? '0s',
      lookback: overrides.lookback ?? '0s',
    },
    staleAfter: '1h',
    retention: overrides.retention ?? '3650d',
    ...(overrides.distinctFrom ? { distinctFrom: overrides.distinctFrom } : {}),
  };
}

/** An engine over a PostgresSource; `syncOnce` runs one full sync and checks it succeeded. */
export function pgEngine(spec: DatasetSpec, store: Store, options: EngineOptions = {}) {
  if (spec.source.kind !== 'postgres') throw new Error('a postgres dataset is needed');
  const source = new PostgresSource(spec, spec.source);
  // One replica name for every engine of the tests: a process that resumes after another was
  // killed is the same replica to the lease, and takes it up at once.
  const engine = new SyncEngine(spec, source, store, silent, {
    backoff: { initialMs: 20, maxMs: 100 },
    lease: { holder: 'integration-test' },
    ...options,
  });
  let started = false;
  return {
    source,
    engine,
    /** Runs sync until a run that started after this call has finished; it must succeed. */
    async syncOnce(): Promise<void> {
      if (!started) {
        await store.register(spec);
        engine.start();
        started = true;
      }
      await engine.syncNow();
      const status = engine.status();
      if (status.state !== 'idle') {
        throw new Error(`sync did not succeed: ${status.state} ${status.lastError?.message ?? ''}`);
      }
    },
    async close(): Promise<void> {
      await engine.stop();
      await source.close();
    },
  };
}

/** Polls `check` until it returns true, at most `timeoutMs`. */
export async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Resolves with the first `event` that passes `accept`, or rejects after `timeoutMs`. */
export function nextEvent<T>(
  emitter: {
    on(event: string, listener: (value: T) => void): unknown;
    off(event: string, listener: (value: T) => void): unknown;
  },
  event: string,
  accept: (value: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const listener = (value: T) => {
      if (!accept(value)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(value);
    };
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`no matching "${event}" event within ${timeoutMs} ms`));
    }, timeoutMs);
    emitter.on(event, listener);
  });
}

/** Per hour and country: live rows and the sum of their amounts, from PostgreSQL. */
export async function sqlHourly(
  schema: PgSchema,
  table: string,
): Promise<Map<string, [number, number | null]>> {
  const rows = await schema.sql<{ t: string; country: string | null; n: string; total: string | null }>(
    `SELECT (extract(epoch FROM date_bin('1 hour', ts, 'epoch')) * 1000)::bigint::text AS t, country,
            count(*)::text AS n, sum(amount)::text AS total
     FROM ${table} WHERE deleted_at IS NULL GROUP BY 1, 2`,
  );
  return new Map(
    rows.map((r) => [`${r.t}|${r.country ?? ''}`, [Number(r.n), r.total === null ? null : Number(r.total)]]),
  );
}

/** The same from the store, through the query engine (1 h steps, grouped by country, table format). */
export async function storeHourly(
  store: Store,
  spec: DatasetSpec,
  range: { from: number; to: number },
): Promise<Map<string, [number, number | null]>> {
  const query: MetricsQuery = {
    refId: 'A',
    dataset: spec.name,
    aggregations: ['count', 'sum(amount)'],
    groupBy: ['country'],
    format: 'table',
  };
  const { frames } = await runMetricsQuery(store, spec, query, range, HOUR, 100_000, 'q');
  const [times, countries, counts, sums] = frames[0]!.data.values as [
    number[],
    (string | null)[],
    number[],
    (number | null)[],
  ];
  return new Map(times.map((t, i) => [`${t}|${countries[i] ?? ''}`, [counts[i]!, sums[i]!]]));
}

/** Asserts two hourly maps agree: counts exactly, sums to 1e-9 relative. */
export function expectHourlyEqual(
  got: Map<string, [number, number | null]>,
  want: Map<string, [number, number | null]>,
): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  const bad: string[] = [];
  for (const [key, [n, total]] of want) {
    const [gotN, gotTotal] = got.get(key)!;
    if (gotN !== n) bad.push(`${key}: count ${gotN} != ${n}`);
    if (!closeTo(gotTotal, total)) bad.push(`${key}: sum ${gotTotal} != ${total}`);
  }
  expect(bad).toEqual([]);
}

export function closeTo(a: number | null, b: number | null, relative = 1e-9): boolean {
  if (a === null || b === null) return a === b;
  return Math.abs(a - b) <= relative * Math.max(1, Math.abs(a), Math.abs(b));
}

/** Records every id the store was asked to delete without moving the cursor: reconciliation's tombstones. */
export function recordTombstones(store: Store): string[] {
  const ids: string[] = [];
  const apply = store.applyBatch.bind(store);
  store.applyBatch = (dataset: string, batch: ApplyBatch) => {
    if (batch.position === null) ids.push(...batch.records.filter((r) => r.deleted).map((r) => r.id));
    return apply(dataset, batch);
  };
  return ids;
}

/** A forked worker's setting, which its parent passes in the environment. */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** Runs a forked worker's main; a failure is told to the parent over IPC as `{kind: 'error'}`. */
export function runWorker(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.send?.({ kind: 'error', message: err instanceof Error ? err.message : String(err) });
    process.exitCode = 1;
    process.disconnect?.();
  });
}
