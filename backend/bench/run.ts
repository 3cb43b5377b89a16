/**
 * `npm run bench`: loads an events table into PostgreSQL, backfills it into Redis with the
 * real sync engine, then compares what a Grafana panel costs through LiveSync's HTTP API
 * with the same aggregation run straight in PostgreSQL (as Grafana's PostgreSQL data source
 * would), and how long syncing 1k changed rows takes as the table grows. Prints a markdown
 * report and writes it to BENCHMARKS.md at the repository root.
 *
 *   BENCH_ROWS=1000000        rows in the table; above 1,000,000 the run also stops at 1,000,000 rows,
 *                             so that the incremental cost there and at N compare in one run (the
 *                             10M run: BENCH_ROWS=10000000, written to BENCHMARKS-10M.md)
 *   BENCH_RUNS=50             timed runs per panel and path
 *   BENCH_SERVING_S=10        seconds of the concurrent serving scenario, and of each run of the one
 *                             panel flat out (0 skips both)
 *   BENCH_HEAVY_S=10          seconds of the heaviest allowed requests with liveness polled (0 skips it)
 *   BENCH_REPLICAS_S=10       seconds of serving through 1, 2 and 3 service processes each (0 skips it)
 *   BENCH_RANDOM_ROWS=50000   rows of the extra backfill with event times in random order (0 skips it)
 *   BENCH_WIDE_BUCKETS=240    base buckets (of ~230 records) of the 4-dimension workload (0 skips it)
 *   BENCH_CDC_COMMITS=200     single-row commits timed to answer and SSE event in mode cdc, on a
 *                             PostgreSQL of its own with wal_level=logical (0 skips it)
 *   BENCH_OUT=<path>          where to write the report (default: <repo>/BENCHMARKS.md at 1,000,000
 *                             rows, else <repo>/BENCHMARKS-<N>.md, e.g. BENCHMARKS-10M.md); the
 *                             default report carries the goals of BENCHMARKS-10M.md when it exists
 *   BENCH_REDIS_URL=<url>     an existing Redis to use; by default the benchmark starts a throwaway
 *                             redis-server of its own, logging commands slower than 10 ms (SLOWLOG)
 *   TEST_DATABASE_URL as for the tests.
 *
 * Everything it creates (a schema, keys under a random prefix) is removed at the end, also on
 * failure or Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'pg';
import { pino } from 'pino';
import { buildApp } from '../src/app';
import type { DatasetSpec } from '../src/config/dataset';
import type { Config } from '../src/config/load';
import { createSource } from '../src/sources';
import { PostgresSource } from '../src/sources/postgres';
import type { Position, Source } from '../src/sources/types';
import { createRedisClient, scanKeys, type RedisClient } from '../src/store/redis-client';
import { RedisStore } from '../src/store/redis';
import type { Store } from '../src/store/types';
import type { RunEvent, SyncEngine } from '../src/sync/engine';
import { SyncManager } from '../src/sync/manager';
import { eventsDataset, eventsSpec, eventsTableSql, ThrowawayRedis } from '../test/integration/support';
import {
  kindsOf,
  memoryByFamily,
  takeSlowlog,
  usedMemory,
  wideScenario,
  type Family,
  type SlowEntry,
  type WideResult,
} from './redis-measure';
import { cdcGoalLines, cdcScenario, type CdcLatency } from './cdc';
import { heavyScenario, type HeavyResult } from './heavy';
import { renderReplicas, replicasScenario, type ReplicasRun } from './replicas';
import { panelGoalLines, panelScenario, renderPanelScenario, type PanelScenarioResult } from './panel';
import { servingScenario, type Panel, type ServingResult } from './serving';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const RUNS = Math.max(50, Number(process.env.BENCH_RUNS ?? 50));
const SERVING_S = Number(process.env.BENCH_SERVING_S ?? 10);
const HEAVY_S = Number(process.env.BENCH_HEAVY_S ?? 10);
const REPLICAS_S = Number(process.env.BENCH_REPLICAS_S ?? 10);
const RANDOM_ROWS = Number(process.env.BENCH_RANDOM_ROWS ?? 50_000);
const WIDE_BUCKETS = Number(process.env.BENCH_WIDE_BUCKETS ?? 240);
const CDC_COMMITS = Number(process.env.BENCH_CDC_COMMITS ?? 200);
/** The paced serving run's latency goal (issue 10). */
const PACED_P99_MS = 20;
/** SLOWLOG threshold of the throwaway server: the issue's 10 ms. */
const SLOW_MS = 10;
const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
const REPO = join(__dirname, '../..');
/** The rows of the default run; a run at another size writes a report of its own beside it. */
const DEFAULT_ROWS = 1_000_000;
const reportName = (rows: number) =>
  rows === DEFAULT_ROWS ? 'BENCHMARKS.md' : `BENCHMARKS-${rows % 1e6 === 0 ? `${rows / 1e6}M` : rows}.md`;
const OUT = process.env.BENCH_OUT ?? join(REPO, reportName(ROWS));
/** The large run whose goals the default report repeats. */
const LARGE_REPORT = join(REPO, reportName(10_000_000));
const BATCH = 5000;
/** The benchmark's dataset over its table: the engine here and the replicas of the serving scenario declare the same. */
const BENCH_DATASET = { batchSize: BATCH, retention: '31d' };
const DAY = 86_400_000;
const SPAN_DAYS = 30;
const CHANGED = 1000;
const INCREMENTAL_REPEATS = 5;

const log = pino({ level: 'silent' });
const say = (text: string) => process.stdout.write(`${text}\n`);

// ---------------------------------------------------------------------------------------------
// Data

const COUNTRIES = ['US', 'IN', 'DE', 'BR', 'GB', 'FR', 'JP', 'MX', 'CA', 'ID'].concat([
  'NG',
  'IT',
  'ES',
  'KR',
  'AU',
  'TR',
  'PL',
  'NL',
  'SE',
  'ZA',
]);

/**
 * Rows `from`..`to` (ids), appended roughly in event-time order as event tables are: row i's
 * time is its share of the 30 days ending `end`, give or take 5 minutes. Countries follow a
 * power law (US about a quarter, ZA about 2 %), devices 60/30/10, 5 % NULL amounts.
 */
function insertSql(
  table: string,
  from: number,
  to: number,
  total: number,
  end: string,
  ordered = true,
): string {
  const countries = `ARRAY[${COUNTRIES.map((c) => `'${c}'`).join(',')}]`;
  const ts = ordered
    ? `${end}::timestamptz - interval '${SPAN_DAYS} days' + (i::float8 / ${total}) * interval '${SPAN_DAYS} days' + (random() - 0.5) * interval '10 minutes'`
    : `${end}::timestamptz - random() * interval '${SPAN_DAYS} days'`;
  return `INSERT INTO ${table} (id, ts, country, device, amount, duration_ms, user_id)
    SELECT i, least(${ts}, ${end}::timestamptz - interval '1 second'),
           (${countries})[1 + floor(20 * power(random(), 2.2))::int],
           CASE WHEN r < 0.6 THEN 'mobile' WHEN r < 0.9 THEN 'desktop' ELSE 'tablet' END,
           CASE WHEN random() < 0.05 THEN NULL ELSE round((random() * 500)::numeric, 2) END,
           (50 + random() * 2000)::int,
           'u' || floor(power(random(), 2) * 200000)::int
    FROM (SELECT i, random() AS r FROM generate_series(${from}, ${to}) i) g`;
}

async function createTable(pool: Pool, table: string): Promise<void> {
  await pool.query(eventsTableSql(table));
}

function specFor(table: string): DatasetSpec {
  return eventsSpec(table, BENCH_DATASET);
}

// ---------------------------------------------------------------------------------------------
// Instrumentation: where a sync's time goes

interface Timer {
  calls: number;
  ms: number;
}

function timed<T extends object, K extends keyof T>(target: T, method: K, into: Timer): void {
  const original = (target[method] as (...args: unknown[]) => Promise<unknown>).bind(target);
  (target as Record<K, unknown>)[method] = async (...args: unknown[]) => {
    const started = performance.now();
    try {
      return await original(...args);
    } finally {
      into.calls++;
      into.ms += performance.now() - started;
    }
  };
}

interface SyncTimers {
  fetch: Timer;
  apply: Timer;
  estimate: Timer;
}

function newTimers(): SyncTimers {
  return { fetch: { calls: 0, ms: 0 }, apply: { calls: 0, ms: 0 }, estimate: { calls: 0, ms: 0 } };
}

function resetTimers(t: SyncTimers): void {
  for (const timer of Object.values(t)) Object.assign(timer, { calls: 0, ms: 0 });
}

/** Runs one sync now and returns its run event (outcome must be success). */
async function syncRun(engine: SyncEngine): Promise<RunEvent> {
  const runs: RunEvent[] = [];
  const listener = (run: RunEvent) => runs.push(run);
  engine.on('run', listener);
  try {
    await engine.syncNow();
  } finally {
    engine.off('run', listener);
  }
  const failed = runs.find((r) => r.outcome === 'failure');
  if (failed) throw new Error(`sync failed: ${failed.error?.message ?? 'unknown error'}`);
  const run = runs.at(-1);
  if (!run) throw new Error('no sync run happened');
  return runs.length === 1 ? run : { ...run, durationMs: runs.reduce((a, r) => a + r.durationMs, 0) };
}

// ---------------------------------------------------------------------------------------------
// Statistics

interface Stats {
  p50: number;
  p99: number;
  mean: number;
  n: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return {
    p50: at(0.5),
    p99: at(0.99),
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    n: sorted.length,
  };
}

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const int = (v: number) => Math.round(v).toLocaleString('en-US');

// ---------------------------------------------------------------------------------------------
// Panels

interface BenchPanel extends Panel {
  stepMs: number;
}

const PANELS: BenchPanel[] = [
  {
    name: '24h @ 1m by country',
    rangeMs: DAY,
    intervalMs: 60_000,
    stepMs: 60_000,
    query: { aggregations: ['count'], groupBy: ['country'] },
    sql: '',
  },
  {
    name: '7d @ 10m by device',
    rangeMs: 7 * DAY,
    intervalMs: 600_000,
    stepMs: 600_000,
    query: { aggregations: ['count'], groupBy: ['device'] },
    sql: '',
  },
  {
    name: '30d @ 1h total count',
    rangeMs: 30 * DAY,
    intervalMs: 3_600_000,
    stepMs: 3_600_000,
    query: { aggregations: ['count'] },
    sql: '',
  },
];

function panelSql(table: string, panel: BenchPanel): string {
  const interval = `${panel.stepMs / 60_000} minutes`;
  const group = (panel.query.groupBy as string[] | undefined)?.[0];
  return group
    ? `SELECT date_bin('${interval}', ts, 'epoch') AS time, ${group}, count(*) FROM ${table} WHERE ts >= $1 AND ts < $2 AND deleted_at IS NULL GROUP BY 1, 2 ORDER BY 1`
    : `SELECT date_bin('${interval}', ts, 'epoch') AS time, count(*) FROM ${table} WHERE ts >= $1 AND ts < $2 AND deleted_at IS NULL GROUP BY 1 ORDER BY 1`;
}

interface PanelResult {
  panel: BenchPanel;
  uncached: Stats;
  cached: Stats;
  cachedHits: number;
  postgres: Stats;
  /** Both answers agree on the total over the step-aligned range. */
  checked: { livesync: number; postgres: number };
}

async function measurePanels(baseUrl: string, pool: Pool): Promise<PanelResult[]> {
  const results: PanelResult[] = [];
  for (const panel of PANELS) {
    const body = (now: number) =>
      JSON.stringify({
        range: { from: now - panel.rangeMs, to: now },
        intervalMs: panel.intervalMs,
        maxDataPoints: 1500,
        queries: [{ refId: 'A', dataset: 'events', ...panel.query }],
      });
    const ask = async (now: number, skipCache: boolean) => {
      const started = performance.now();
      const response = await fetch(`${baseUrl}/api/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(skipCache ? { 'x-cache-skip': 'true' } : {}) },
        body: body(now),
      });
      const text = await response.text();
      const elapsed = performance.now() - started;
      if (response.status !== 200) throw new Error(`${panel.name}: HTTP ${response.status}: ${text}`);
      return { elapsed, text, cache: response.headers.get('x-cache') };
    };
    const pg = async (now: number) => {
      const started = performance.now();
      const result = await pool.query(panel.sql, [new Date(now - panel.rangeMs), new Date(now)]);
      return { elapsed: performance.now() - started, rows: result.rows as { count: string }[] };
    };

    // Both answer the same question: LiveSync over its step-aligned range, PostgreSQL asked for it.
    const now = Date.now();
    const aligned = {
      from: Math.floor((now - panel.rangeMs) / panel.stepMs) * panel.stepMs,
      to: Math.ceil(now / panel.stepMs) * panel.stepMs,
    };
    const answer = JSON.parse((await ask(now, true)).text) as {
      results: { A: { frames: { data: { values: number[][] } }[] } };
    };
    const livesyncTotal = answer.results.A.frames.reduce(
      (sum, f) => sum + (f.data.values[1] ?? []).reduce((a, b) => a + b, 0),
      0,
    );
    const sqlTotal = (
      await pool.query(panel.sql, [new Date(aligned.from), new Date(aligned.to)])
    ).rows.reduce((sum: number, r: { count: string }) => sum + Number(r.count), 0);

    const samples = { uncached: [] as number[], cached: [] as number[], postgres: [] as number[] };
    let cachedHits = 0;
    for (let i = 0; i < 3; i++) {
      await ask(Date.now(), true);
      await ask(Date.now(), false);
      await pg(Date.now());
    }
    globalThis.gc?.();
    for (let i = 0; i < RUNS; i++) samples.uncached.push((await ask(Date.now(), true)).elapsed);
    for (let i = 0; i < RUNS; i++) {
      const { elapsed, cache } = await ask(Date.now(), false);
      samples.cached.push(elapsed);
      if (cache === 'HIT') cachedHits++;
    }
    for (let i = 0; i < RUNS; i++) samples.postgres.push((await pg(Date.now())).elapsed);
    const result: PanelResult = {
      panel,
      uncached: stats(samples.uncached),
      cached: stats(samples.cached),
      cachedHits,
      postgres: stats(samples.postgres),
      checked: { livesync: livesyncTotal, postgres: sqlTotal },
    };
    results.push(result);
    say(
      `  ${panel.name}: LiveSync p50 ${ms(result.uncached.p50)} ms (cached ${ms(result.cached.p50)} ms), ` +
        `PostgreSQL p50 ${ms(result.postgres.p50)} ms, ratio ${(result.postgres.p50 / result.uncached.p50).toFixed(1)}×` +
        ` — totals ${int(livesyncTotal)} vs ${int(sqlTotal)}`,
    );
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// Machine

async function machine(pool: Pool, redis: RedisClient) {
  const pgVersion = ((await pool.query('SHOW server_version')).rows[0] as { server_version: string })
    .server_version;
  const info = await redis.info('server');
  const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  const cpu = cpus();
  return {
    cores: cpu.length,
    cpu: cpu[0]?.model.trim() ?? 'unknown',
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    postgres: pgVersion.split(' ')[0]!,
    redis: redisVersion,
    load: loadavg()[0]!,
  };
}

// ---------------------------------------------------------------------------------------------
// Main

interface StageResult {
  rows: number;
  added: number;
  syncMs: number;
  rate: number;
  incremental: number[];
  /** Where the incremental runs' time went, summed over the runs. */
  incrementalTimers: SyncTimers;
  timers: SyncTimers;
  redisMemory: string;
  /** Redis memory per record held, from used_memory (a throwaway server holds nothing else). */
  bytesPerRecord: number;
}

async function main(): Promise<void> {
  const started = Date.now();
  const schema = `ls_bench_${randomBytes(5).toString('hex')}`;
  // As long as the default prefix (`livesync`): key names count in the memory per record.
  const prefix = `lsb-${randomBytes(2).toString('hex')}`;
  const table = `${schema}.events`;
  const pool = new Pool({ connectionString: PG_URL, max: 10 });
  pool.on('error', () => undefined);
  const throwaway = process.env.BENCH_REDIS_URL
    ? null
    : new ThrowawayRedis(['--slowlog-log-slower-than', String(SLOW_MS * 1000), '--slowlog-max-len', '10000']);
  if (throwaway) await throwaway.start();
  const REDIS_URL = process.env.BENCH_REDIS_URL ?? throwaway!.url;
  // BENCH_REDIS_URL may name a cluster (redis+cluster://): measurements then cover every master.
  const admin = createRedisClient(REDIS_URL);
  admin.on('error', () => undefined);
  await admin.connect();
  let cleaned = false;
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    for (const step of cleanups.reverse())
      await step().catch((err: unknown) => say(`cleanup: ${String(err)}`));
    let removed = 0;
    await scanKeys(admin, `${prefix}:*`, async (keys) => void (removed += await admin.unlink(...keys)), 5000);
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    say(`cleaned up: schema ${schema} dropped, ${int(removed)} Redis keys under ${prefix}: deleted`);
    admin.disconnect();
    await pool.end();
    await throwaway?.stop();
  };
  process.once('SIGINT', () => {
    say('interrupted: cleaning up');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    const host = await machine(pool, admin);
    say(
      `LiveSync benchmark: ${int(ROWS)} rows, ${host.cores} cores, node ${host.node}, PostgreSQL ${host.postgres}, Redis ${host.redis}`,
    );
    await pool.query(`CREATE SCHEMA ${schema}`);
    await createTable(pool, table);
    for (const panel of PANELS) panel.sql = panelSql(table, panel);
    // Every stage's rows end at the same `now`, so the 30 days fill up as the table grows.
    const end = `'${new Date().toISOString()}'`;

    const spec = specFor(table);
    if (spec.source.kind !== 'postgres') throw new Error('unreachable');
    const source = new PostgresSource(spec, spec.source);
    const store = await RedisStore.connect(REDIS_URL, prefix);
    const timers = newTimers();
    timed(source as Source, 'fetch', timers.fetch);
    timed(source as Source, 'estimateRemaining', timers.estimate);
    timed(store as Store, 'applyBatch', timers.apply);
    const sync = new SyncManager([spec], () => source, store, log);
    const engine = sync.get('events')!;
    const config: Config = {
      server: { host: '127.0.0.1', port: 0, apiKey: '', rateLimitPerMinute: 0 },
      redis: { url: REDIS_URL, prefix },
      grafanaLive: null,
      datasets: [spec],
      source: 'bench',
    };
    const app = await buildApp({ config, store, sync, logger: log, startSync: false });
    cleanups.push(() => app.close());
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    await store.register(spec);

    const slow: { stage: string; entries: SlowEntry[] }[] = [];
    const measureSlow = throwaway !== null;
    if (measureSlow) await takeSlowlog(admin);
    const baseMemory = await usedMemory(admin);

    // Stages: the table at a quarter, half and all of its rows (and at the default run's size
    // first, in a larger run); each stage syncs what was added (the first one is the backfill
    // proper), then times syncing 1k changed rows.
    const stages: StageResult[] = [];
    const sizes = [
      ...(ROWS > DEFAULT_ROWS * 2 ? [DEFAULT_ROWS] : []),
      Math.floor(ROWS / 4),
      Math.floor(ROWS / 2),
      ROWS,
    ];
    let loaded = 0;
    for (const size of sizes) {
      let t = performance.now();
      await pool.query(insertSql(table, loaded + 1, size, ROWS, end));
      if (loaded === 0) {
        await pool.query(`CREATE INDEX ON ${table} (updated_at, id)`);
        await pool.query(`CREATE INDEX ON ${table} (ts)`);
      }
      await pool.query(`ANALYZE ${table}`);
      const loadMs = performance.now() - t;
      const added = size - loaded;
      loaded = size;
      resetTimers(timers);
      globalThis.gc?.();
      t = performance.now();
      // The first stage starts the engine: its first run is the backfill from an empty store.
      if (stages.length === 0) engine.start();
      await syncRun(engine);
      const syncMs = performance.now() - t;
      const stageTimers = structuredClone(timers);
      const state = (await store.readState('events'))!;
      if (state.records !== size)
        throw new Error(`after syncing ${size} rows the store holds ${state.records}`);

      const incremental: number[] = [];
      let incrementalUpserts = 0;
      resetTimers(timers);
      for (let r = 0; r < INCREMENTAL_REPEATS; r++) {
        const ids = new Set<number>();
        while (ids.size < CHANGED) ids.add(1 + Math.floor(Math.random() * size));
        // Always a different amount (+0.01 to +10.00), so every one of the rows really changes.
        await pool.query(
          `UPDATE ${table} SET amount = coalesce(amount, 0) + round((0.01 + random() * 9.99)::numeric, 2),
             updated_at = clock_timestamp() WHERE id = ANY($1)`,
          [[...ids]],
        );
        const run = await syncRun(engine);
        incremental.push(run.durationMs);
        incrementalUpserts += run.upserts;
      }
      if (incrementalUpserts !== CHANGED * INCREMENTAL_REPEATS) {
        throw new Error(
          `${CHANGED * INCREMENTAL_REPEATS} rows changed but ${incrementalUpserts} were applied`,
        );
      }
      const incrementalTimers = structuredClone(timers);
      const used = await usedMemory(admin);
      const memory = `${(used / 2 ** 20).toFixed(2)}M`;
      const bytesPerRecord = (used - baseMemory) / size;
      if (measureSlow) {
        slow.push({
          stage: `sync to ${int(size)} rows, then 1k changed rows × 5`,
          entries: await takeSlowlog(admin),
        });
      }
      const stage: StageResult = {
        rows: size,
        added,
        syncMs,
        rate: (added / syncMs) * 1000,
        incremental,
        incrementalTimers,
        timers: stageTimers,
        redisMemory: memory,
        bytesPerRecord,
      };
      stages.push(stage);
      say(
        `  ${int(size)} rows: loaded ${int(added)} in ${(loadMs / 1000).toFixed(1)} s, synced them in ${(syncMs / 1000).toFixed(1)} s ` +
          `(${int(stage.rate)} records/s; fetch ${(stageTimers.fetch.ms / 1000).toFixed(1)} s, apply ${(stageTimers.apply.ms / 1000).toFixed(1)} s, ` +
          `${stageTimers.estimate.calls} estimates ${ms(stageTimers.estimate.ms)} ms); 1k changed rows: ${incremental.map((v) => ms(v)).join(', ')} ms; Redis ${memory}`,
      );
    }

    const families = await memoryByFamily(admin, `${prefix}:{events}:`);
    // The measurement's own MEMORY USAGE calls are not the service's commands.
    if (measureSlow) await takeSlowlog(admin);
    const keyset = await keysetReadRate(spec);
    say(
      `PostgreSQL keyset read of the whole table (no apply): ${int(keyset.rate)} records/s; ` +
        `Redis ${int(stages.at(-1)!.bytesPerRecord)} bytes/record`,
    );

    say('panels (through the HTTP API):');
    const panels = await measurePanels(address, pool);

    let panel: PanelScenarioResult | null = null;
    if (SERVING_S > 0) {
      say(`one panel flat out: 24h @ 1m by country, ${SERVING_S} s per run, 50 connections`);
      const first = PANELS[0]!;
      const now = Date.now();
      panel = await panelScenario({
        baseUrl: address,
        durationS: SERVING_S,
        body: JSON.stringify({
          range: { from: now - first.rangeMs, to: now },
          intervalMs: first.intervalMs,
          maxDataPoints: 1500,
          queries: [{ refId: 'A', dataset: 'events', ...first.query }],
        }),
      });
      say(
        `  bare Fastify ${int(panel.fastify.throughput)} req/s; LiveSync cached ${int(panel.cached.throughput)}, ` +
          `uncached ${int(panel.uncached.throughput)}, gzip ${int(panel.gzip.throughput)}, br ${int(panel.br.throughput)} req/s; ` +
          `${int(panel.cached.bytes)} bytes, gzip ${int(panel.gzip.bytes)}, br ${int(panel.br.bytes)}`,
      );
    }

    let serving: ServingResult | null = null;
    if (SERVING_S > 0) {
      say(
        `serving scenario: ${SERVING_S} s, 10 viewers × 3 panels, 50 connections, with 200 rows changing every second`,
      );
      let churning = true;
      const churn = (async () => {
        while (churning) {
          const ids = Array.from({ length: 200 }, () => 1 + Math.floor(Math.random() * ROWS));
          await pool.query(
            `UPDATE ${table} SET amount = round((random() * 500)::numeric, 2), updated_at = clock_timestamp() WHERE id = ANY($1)`,
            [ids],
          );
          await engine.syncNow();
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      })();
      try {
        serving = await servingScenario({
          baseUrl: address,
          dataset: 'events',
          panels: PANELS,
          pool,
          durationS: SERVING_S,
        });
      } finally {
        churning = false;
        await churn;
      }
      say(
        `  LiveSync ${int(serving.throughput)} req/s p50 ${ms(serving.p50)} ms p99 ${ms(serving.p99)} ms; ` +
          `PostgreSQL ${int(serving.baseline.throughput)} req/s p50 ${ms(serving.baseline.p50)} ms p99 ${ms(serving.baseline.p99)} ms`,
      );
    }

    if (measureSlow) slow.push({ stage: 'panels and serving', entries: await takeSlowlog(admin) });

    let heavy: HeavyResult | null = null;
    if (HEAVY_S > 0) {
      say(`heaviest allowed requests: ${HEAVY_S} s, 6 at once, liveness polled every 10 ms`);
      heavy = await heavyScenario({
        baseUrl: address,
        store,
        spec,
        limits: app.queries.limits,
        gate: () => app.queries.gate.stats(),
        durationS: HEAVY_S,
      });
      say(
        `  ${heavy.body.queries.length} queries, ${int(heavy.body.cells)} cells, ${int(heavy.body.points)} points, ` +
          `${(heavy.body.bytes / 2 ** 20).toFixed(1)} MB each; ${heavy.heavy.ok} answered, ${heavy.heavy.busy} busy; ` +
          `liveness p50 ${ms(heavy.liveness.p50)} ms p99 ${ms(heavy.liveness.p99)} ms max ${ms(heavy.liveness.max)} ms ` +
          `(${heavy.liveness.n} polls); RSS ${int(heavy.rssMb.baseline)} → ${int(heavy.rssMb.peak)} MB`,
      );
      if (measureSlow) slow.push({ stage: 'heaviest allowed requests', entries: await takeSlowlog(admin) });
    }

    let randomOrder: { rows: number; ms: number; rate: number } | null = null;
    if (RANDOM_ROWS > 0) {
      randomOrder = await randomOrderBackfill(pool, schema, REDIS_URL);
      if (measureSlow) slow.push({ stage: 'random-order backfill', entries: await takeSlowlog(admin) });
      say(
        `random-order backfill: ${int(randomOrder.rows)} rows in ${(randomOrder.ms / 1000).toFixed(1)} s (${int(randomOrder.rate)} records/s)`,
      );
    }

    let replicas: ReplicasRun[] = [];
    if (REPLICAS_S > 0) {
      say(`serving through 1, 2 and 3 service processes behind a round-robin: ${REPLICAS_S} s each`);
      // The replicas only serve (this process's engine holds the lease); staleAfter must exceed the 1h interval.
      const dataset = { ...eventsDataset(table, BENCH_DATASET), staleAfter: '2h' };
      replicas = await replicasScenario({
        redisUrl: REDIS_URL,
        prefix,
        dataset,
        panels: PANELS,
        durationS: REPLICAS_S,
      });
      for (const r of replicas)
        say(`  ${r.replicas} replica(s): ${int(r.throughput)} req/s p50 ${ms(r.p50)} ms p99 ${ms(r.p99)} ms`);
    }

    let wide: WideResult | null = null;
    if (WIDE_BUCKETS > 0) {
      wide = await wideScenario(REDIS_URL, `lsbench-${randomBytes(5).toString('hex')}`, WIDE_BUCKETS);
      say(
        `4-dimension workload: ${int(wide.records)} records backfilled in ${(wide.backfillMs / 1000).toFixed(1)} s, ` +
          `${int(wide.updates)} random updates in ${(wide.updatesMs / 1000).toFixed(1)} s, ${int(wide.memoryPerRecord)} bytes/record`,
      );
      if (measureSlow) slow.push({ stage: '4-dimension workload', entries: wide.slowlog });
    }

    let cdc: CdcLatency | null = null;
    if (CDC_COMMITS > 0) {
      say(`mode cdc: ${CDC_COMMITS} single-row commits, each timed to the answer and the SSE event`);
      cdc = await cdcScenario({ redisUrl: REDIS_URL, commits: CDC_COMMITS });
      say(
        `  answer p50 ${ms(cdc.answer.p50)} ms p99 ${ms(cdc.answer.p99)} ms; event p50 ${ms(cdc.event.p50)} ms p99 ${ms(cdc.event.p99)} ms`,
      );
    }

    const report = renderReport({
      host,
      cdc,
      stages,
      panels,
      panel,
      serving,
      heavy,
      randomOrder,
      keyset,
      families,
      wide,
      slow: measureSlow ? slow : null,
      totalS: (Date.now() - started) / 1000,
    });
    const full =
      replicas.length > 0 ? `${report}\n${renderReplicas(replicas, host.cores, REPLICAS_S)}` : report;
    say('');
    say(full);
    writeFileSync(OUT, await formatMarkdown(full, OUT));
    say(`written to ${OUT}`);
  } finally {
    await cleanup();
  }
}

/** The report as the repository's Prettier would format it, so `npm run lint` stays clean. */
async function formatMarkdown(text: string, path: string): Promise<string> {
  try {
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(path)) ?? {};
    return await prettier.format(text, { ...options, parser: 'markdown' });
  } catch {
    return text;
  }
}

/** How fast the source reads the whole table by keyset, in batches as the backfill does, applying nothing. */
async function keysetReadRate(spec: DatasetSpec): Promise<{ rows: number; ms: number; rate: number }> {
  if (spec.source.kind !== 'postgres') throw new Error('unreachable');
  const source = new PostgresSource(spec, spec.source);
  try {
    let after: Position | null = null;
    let rows = 0;
    const t = performance.now();
    for (;;) {
      const page = await source.fetch({ after, limit: BATCH });
      rows += page.records.length;
      after = page.last ?? after;
      if (page.done || page.records.length === 0) break;
    }
    const elapsed = performance.now() - t;
    return { rows, ms: elapsed, rate: (rows / elapsed) * 1000 };
  } finally {
    await source.close();
  }
}

/** The worst shape for a backfill: event times uncorrelated with the change order. */
async function randomOrderBackfill(
  pool: Pool,
  schema: string,
  redisUrl: string,
): Promise<{ rows: number; ms: number; rate: number }> {
  const table = `${schema}.events_random`;
  await createTable(pool, table);
  await pool.query(insertSql(table, 1, RANDOM_ROWS, RANDOM_ROWS, `'${new Date().toISOString()}'`, false));
  await pool.query(`CREATE INDEX ON ${table} (updated_at, id)`);
  await pool.query(`ANALYZE ${table}`);
  const spec = specFor(table);
  if (spec.source.kind !== 'postgres') throw new Error('unreachable');
  const prefix = `lsbench-${randomBytes(5).toString('hex')}`;
  const store = await RedisStore.connect(redisUrl, prefix);
  const sync = new SyncManager([spec], createSource, store, log);
  try {
    await sync.start();
    const t = performance.now();
    await syncRun(sync.get('events')!);
    const elapsed = performance.now() - t;
    return { rows: RANDOM_ROWS, ms: elapsed, rate: (RANDOM_ROWS / elapsed) * 1000 };
  } finally {
    await sync.stop();
    const redis = store.redis;
    await scanKeys(redis, `${prefix}:*`, async (keys) => void (await redis.unlink(...keys)), 5000);
    await store.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function renderReport(r: {
  host: Awaited<ReturnType<typeof machine>>;
  stages: StageResult[];
  panels: PanelResult[];
  panel: PanelScenarioResult | null;
  serving: ServingResult | null;
  heavy: HeavyResult | null;
  cdc: CdcLatency | null;
  randomOrder: { rows: number; ms: number; rate: number } | null;
  keyset: { rows: number; ms: number; rate: number };
  families: Family[];
  wide: WideResult | null;
  slow: { stage: string; entries: SlowEntry[] }[] | null;
  totalS: number;
}): string {
  const backfill = r.stages[0]!;
  const totalRows = r.stages.reduce((a, s) => a + s.added, 0);
  const totalMs = r.stages.reduce((a, s) => a + s.syncMs, 0);
  const overallRate = (totalRows / totalMs) * 1000;
  const median = (xs: number[]) => stats(xs).p50;
  const incr = r.stages.map((s) => median(s.incremental));
  const first = r.panels[0]!;
  const ratio = first.postgres.p50 / first.uncached.p50;
  // The issue's goal: 1M vs 10M within 1.2×; a run of 1M compares N with N/4 the same way.
  const flat = incr.at(-1)! <= 1.2 * incr[0]!;
  const mark = (ok: boolean) => (ok ? '**pass**' : '**miss**');
  const lines: string[] = [];
  lines.push('# Benchmarks');
  lines.push('');
  lines.push(
    `\`npm run bench\` (backend/bench/run.ts), run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; ` +
      `${int(ROWS)} rows; ${RUNS} timed runs per panel and path; whole run ${r.totalS.toFixed(0)} s.`,
  );
  lines.push('');
  lines.push('| machine | |');
  lines.push('|---|---|');
  lines.push(`| cores | ${r.host.cores} (${r.host.cpu}) |`);
  lines.push(`| memory | ${r.host.memory} |`);
  lines.push(`| Node.js | ${r.host.node} |`);
  lines.push(`| PostgreSQL | ${r.host.postgres} |`);
  lines.push(`| Redis | ${r.host.redis} (loopback) |`);
  lines.push(`| rows (N) | ${int(ROWS)} |`);
  lines.push(
    `| load average (1 min) | ${r.host.load.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end (other work on the machine shows here) |`,
  );
  lines.push('');
  lines.push('## Goals');
  lines.push('');
  lines.push('| goal | measured | |');
  lines.push('|---|---|---|');
  lines.push(
    `| ≥ 100× faster than PostgreSQL on 24h @ 1m by country (p50, response cache skipped) | ${ratio.toFixed(1)}× (${ms(first.uncached.p50)} ms vs ${ms(first.postgres.p50)} ms) | ${mark(ratio >= 100)} |`,
  );
  lines.push(
    `| backfill ≥ 100k records/s in order | ${int(backfill.rate)} records/s (first ${int(backfill.added)} rows); ${int(overallRate)} records/s over all ${int(totalRows)} | ${mark(Math.min(backfill.rate, overallRate) >= 100_000)} |`,
  );
  lines.push(
    `| backfill ≥ 25 % of the raw PostgreSQL keyset read rate (same batches, nothing applied) | ${((overallRate / r.keyset.rate) * 100).toFixed(0)} % (${int(overallRate)} of ${int(r.keyset.rate)} records/s) | ${mark(overallRate >= 0.25 * r.keyset.rate)} |`,
  );
  if (r.randomOrder) {
    lines.push(
      `| random-order backfill ≥ 30k records/s | ${int(r.randomOrder.rate)} records/s (${int(r.randomOrder.rows)} rows) | ${mark(r.randomOrder.rate >= 30_000)} |`,
    );
  }
  const applyMs = r.stages.map((s) => s.incrementalTimers.apply.ms / INCREMENTAL_REPEATS);
  lines.push(
    `| 1k random changed rows applied in ≤ 50 ms (mean apply per run) | ${applyMs.map((v, i) => `${ms(v)} ms @ ${int(r.stages[i]!.rows)}`).join(', ')} | ${mark(Math.max(...applyMs) <= 50)} |`,
  );
  lines.push(
    `| incremental sync time flat as the table grows (1k changed rows; at N within 1.2× of the first stage) | ${incr.map((v, i) => `${ms(v)} ms @ ${int(r.stages[i]!.rows)}`).join(', ')} | ${mark(flat)} |`,
  );
  const last = r.stages.at(-1)!;
  lines.push(
    `| Redis memory ≤ 150 bytes per record held (at ${int(last.rows)} rows) | ${int(last.bytesPerRecord)} bytes/record (${last.redisMemory}) | ${mark(last.bytesPerRecord <= 150)} |`,
  );
  if (r.wide) {
    lines.push(
      `| Redis memory ≤ 1 KB per record, 4 dimensions, event times over 30 days (${int(r.wide.records)} records) | ${int(r.wide.spread.memoryPerRecord)} bytes/record | ${mark(r.wide.spread.memoryPerRecord <= 1024)} |`,
    );
  }
  if (r.slow) {
    const all = r.slow.flatMap((s) => s.entries);
    const worst = all.reduce((m, e) => Math.max(m, e.ms), 0);
    lines.push(
      `| no command slower than ${SLOW_MS} ms (SLOWLOG of the throwaway server, whole run) | ${all.length} entries${all.length > 0 ? `, slowest ${ms(worst)} ms` : ''} | ${mark(all.length === 0)} |`,
    );
  }
  if (r.heavy) {
    const h = r.heavy;
    lines.push(
      `| liveness p99 while the heaviest allowed requests run ≤ 100 ms (${h.concurrency} at once, every liveness poll answered) | ${ms(h.liveness.p99)} ms (max ${ms(h.liveness.max)} ms, ${h.liveness.failed} failed of ${h.liveness.n}) | ${mark(h.liveness.p99 <= 100 && h.liveness.failed === 0)} |`,
    );
  }
  if (r.panel) lines.push(...panelGoalLines(r.panel, int));
  if (r.serving) {
    const p = r.serving.paced;
    lines.push(
      `| p99 ≤ ${PACED_P99_MS} ms paced at ${p.rate} req/s while 200 rows/s change and sync (10 viewers × 3 panels) | ${ms(p.p99)} ms (p50 ${ms(p.p50)} ms, ${p.errors} errors / ${p.non2xx} non-2xx) | ${mark(p.p99 <= PACED_P99_MS && p.errors + p.non2xx === 0)} |`,
    );
  }
  if (r.cdc) lines.push(...cdcGoalLines(r.cdc, ms));
  lines.push('');
  lines.push('## Panels');
  lines.push('');
  lines.push(
    'Latency in ms per request, measured by the client: LiveSync through its HTTP API (`fetch` to the real Fastify app on 127.0.0.1) ' +
      'with `X-Cache-Skip: true` (every request reads the rollups) and without it (response cache); PostgreSQL running ' +
      "the panel's SQL the way Grafana's PostgreSQL data source does (`date_bin` … `WHERE ts >= $1 AND ts < $2 AND deleted_at IS NULL GROUP BY … ORDER BY 1`, index on `ts`).",
  );
  lines.push('');
  lines.push(
    '| panel | LiveSync p50 | LiveSync p99 | cached p50 | cached p99 | PostgreSQL p50 | PostgreSQL p99 | ratio p50 (uncached) | ratio p50 (cached) | same total |',
  );
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const p of r.panels) {
    lines.push(
      `| ${p.panel.name} | ${ms(p.uncached.p50)} | ${ms(p.uncached.p99)} | ${ms(p.cached.p50)} | ${ms(p.cached.p99)} | ` +
        `${ms(p.postgres.p50)} | ${ms(p.postgres.p99)} | ${(p.postgres.p50 / p.uncached.p50).toFixed(1)}× | ` +
        `${(p.postgres.p50 / p.cached.p50).toFixed(1)}× | ${p.checked.livesync === p.checked.postgres ? 'yes' : 'NO'} (${int(p.checked.livesync)}) |`,
    );
  }
  lines.push('');
  lines.push(
    `Cached path: ${r.panels.map((p) => `${p.cachedHits}/${RUNS}`).join(', ')} requests were response-cache hits. ` +
      '"same total": the sum of the panel over its step-aligned range, LiveSync vs the SQL over the same range.',
  );
  lines.push('');
  lines.push('## Sync');
  lines.push('');
  lines.push(
    `SyncEngine + PostgresSource into Redis, batch size ${BATCH}. Each stage loads rows (generate_series) and syncs ` +
      `them; the first stage is the backfill from an empty store, later stages catch up on the rows added. Then ` +
      `${INCREMENTAL_REPEATS} times: ${CHANGED} random rows get a new amount and one sync run is timed (the engine's own run duration).`,
  );
  lines.push('');
  lines.push(
    '| table rows | rows synced | sync time | records/s | in fetch (PostgreSQL) | in apply (plan + Redis) | estimates (EXPLAIN) | 1k changed rows: median (runs) | of which fetch / apply (mean) | Redis memory |',
  );
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---|---|---:|');
  for (const s of r.stages) {
    lines.push(
      `| ${int(s.rows)} | ${int(s.added)} | ${(s.syncMs / 1000).toFixed(1)} s | ${int(s.rate)} | ` +
        `${(s.timers.fetch.ms / 1000).toFixed(1)} s (${s.timers.fetch.calls}) | ${(s.timers.apply.ms / 1000).toFixed(1)} s (${s.timers.apply.calls}) | ` +
        `${s.timers.estimate.calls} calls, ${ms(s.timers.estimate.ms)} ms | ${ms(median(s.incremental))} ms (${s.incremental.map((v) => ms(v)).join(', ')}) | ` +
        `${ms(s.incrementalTimers.fetch.ms / INCREMENTAL_REPEATS)} / ${ms(s.incrementalTimers.apply.ms / INCREMENTAL_REPEATS)} ms | ${s.redisMemory} |`,
    );
  }
  if (r.randomOrder) {
    lines.push('');
    lines.push(
      `Event times in random order (uncorrelated with \`updated_at\`, so every batch touches buckets all over the 30 days): ` +
        `${int(r.randomOrder.rows)} rows backfilled in ${(r.randomOrder.ms / 1000).toFixed(1)} s, **${int(r.randomOrder.rate)} records/s**.`,
    );
  }
  lines.push('');
  lines.push(
    `PostgreSQL keyset read rate: the source reading the whole table (${int(r.keyset.rows)} rows) in batches of ${BATCH}, applying nothing: ${(r.keyset.ms / 1000).toFixed(1)} s.`,
  );
  lines.push('');
  lines.push('## Redis memory by key family');
  lines.push('');
  lines.push(
    `At ${int(last.rows)} rows (MEMORY USAGE of up to 3,000 random keys per family, scaled to the family; used_memory of the throwaway server gives ${int(last.bytesPerRecord)} bytes per record in all).`,
  );
  lines.push('');
  lines.push('| family | keys | bytes | bytes per record |');
  lines.push('|---|---:|---:|---:|');
  for (const f of r.families) {
    lines.push(`| ${f.family} | ${int(f.keys)} | ${int(f.bytes)} | ${(f.bytes / last.rows).toFixed(1)} |`);
  }
  lines.push('');
  lines.push(
    'By kind: ' +
      kindsOf(r.families)
        .map((k) => `${k.kind} ${(k.bytes / last.rows).toFixed(1)}`)
        .join(', ') +
      ' bytes per record.',
  );
  if (r.wide) {
    const w = r.wide;
    lines.push('');
    lines.push('## 4-dimension workload');
    lines.push('');
    lines.push(
      `Dimensions country (20), device (3), plan (5), region (8): ${w.projections} projections (the default: none, each alone, all together) × 3 tiers. ${int(w.records)} records backfilled in event-time order, ` +
        `about 230 per base bucket, in batches of 5,000: ${(w.backfillMs / 1000).toFixed(1)} s (${int((w.records / w.backfillMs) * 1000)} records/s), ` +
        `${int(w.memoryPerRecord)} bytes of Redis memory per record. Then ${int(w.updates)} random updates in one batch (new amounts, moves across ` +
        `buckets, hours and groups, new user ids, deletes, undeletes): ${(w.updatesMs / 1000).toFixed(1)} s. ` +
        `The same number of records with event times at random over 30 days, into a dataset of its own: ` +
        `${(w.spread.backfillMs / 1000).toFixed(1)} s, ${int(w.spread.memoryPerRecord)} bytes of Redis memory per record.`,
    );
  }
  if (r.slow) {
    lines.push('');
    lines.push('## SLOWLOG');
    lines.push('');
    lines.push(
      `Commands slower than ${SLOW_MS} ms on the throwaway redis-server, by stage (on a shared 2-core machine a short command is logged too when the server is descheduled while it runs).`,
    );
    lines.push('');
    lines.push('| stage | entries | slowest |');
    lines.push('|---|---:|---|');
    for (const { stage, entries } of r.slow) {
      const worst = [...entries].sort((a, b) => b.ms - a.ms)[0];
      lines.push(
        `| ${stage} | ${entries.length} | ${worst ? `${ms(worst.ms)} ms \`${worst.command}\`` : ''} |`,
      );
    }
  }
  if (r.panel) {
    lines.push('');
    lines.push(...renderPanelScenario(r.panel, SERVING_S, ms, int));
  }
  if (r.serving) {
    const s = r.serving;
    lines.push('');
    lines.push('## Serving under load');
    lines.push('');
    lines.push(
      `${SERVING_S} s: 10 viewers × the 3 panels, each viewer refreshing every 10 s, replayed by 50 concurrent connections ` +
        '(autocannon) while 200 rows change and sync every second; then the same SQL straight against PostgreSQL, 10 at a time.',
    );
    lines.push('');
    lines.push('| | requests | req/s | p50 ms | p99 ms | mean ms | errors / non-2xx |');
    lines.push('|---|---:|---:|---:|---:|---:|---|');
    lines.push(
      `| LiveSync | ${int(s.requests)} | ${int(s.throughput)} | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(s.mean)} | ${s.errors} / ${s.non2xx} |`,
    );
    lines.push(
      `| PostgreSQL | ${int(s.baseline.requests)} | ${int(s.baseline.throughput)} | ${ms(s.baseline.p50)} | ${ms(s.baseline.p99)} | ${ms(s.baseline.mean)} | |`,
    );
    lines.push(
      `| LiveSync, paced at ${s.paced.rate} req/s | ${int(s.paced.requests)} | ${int(s.paced.throughput)} | ${ms(s.paced.p50)} | ${ms(s.paced.p99)} | ${ms(s.paced.mean)} | ${s.paced.errors} / ${s.paced.non2xx} |`,
    );
    lines.push('');
    lines.push(
      `Response-cache hit ratio ${(s.responseHitRatio * 100).toFixed(1)} % flat out, ${(s.paced.responseHitRatio * 100).toFixed(1)} % paced ` +
        `(a request that joins an identical computation already under way counts as a hit); HTTP 304 ratio ${(s.httpNotModifiedRatio * 100).toFixed(0)} % ` +
        `(autocannon sends no If-None-Match). Goals: hit ratio ≥ 99 %, 0 errors; p99 ≤ ${PACED_P99_MS} ms paced (in the Goals table).`,
    );
  }
  if (r.heavy) {
    const h = r.heavy;
    lines.push('');
    lines.push('## Heaviest allowed requests');
    lines.push('');
    lines.push(
      `${h.durationS} s: ${h.concurrency} requests kept in flight, each the heaviest body the default \`server.limits\` accept ` +
        `(over ${h.body.rangeMs / DAY} d at ${h.body.intervalMs / 60_000} min: ${h.body.queries.filter((q) => q.groupBy).length} queries grouped by every dimension, ` +
        `${h.body.queries.filter((q) => !q.groupBy).length} reading every group into one series; ${int(h.body.cells)} stored cells, ${int(h.body.points)} points, ${(h.body.bytes / 2 ** 20).toFixed(1)} MB of JSON), ` +
        'each over a different range with `X-Cache-Skip: true` so every one is computed, from another process; `/api/health/live` polled every 10 ms meanwhile.',
    );
    lines.push('');
    lines.push(
      '| answered | busy (503) | other | computed at once (max) | queued (max) | liveness p50 ms | liveness p99 ms | liveness max ms | RSS before → peak |',
    );
    lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    lines.push(
      `| ${h.heavy.ok} | ${h.heavy.busy} | ${h.heavy.other} | ${h.gate.maxActive} | ${h.gate.maxQueued} | ${ms(h.liveness.p50)} | ${ms(h.liveness.p99)} | ${ms(h.liveness.max)} | ` +
        `${int(h.rssMb.baseline)} → ${int(h.rssMb.peak)} MB (+${int(h.rssMb.peak - h.rssMb.baseline)}) |`,
    );
  }
  lines.push('');
  lines.push('## Data');
  lines.push('');
  lines.push(
    `\`events(id bigserial, ts, updated_at default clock_timestamp(), deleted_at, country, device, amount numeric(12,2), duration_ms int, user_id text)\`, ` +
      `indexes on \`(updated_at, id)\` and \`ts\`. Rows are appended in event-time order (row i's \`ts\` is its share of the ${SPAN_DAYS} days ending now, ±5 min), ` +
      'as an event table fills; 20 countries on a power law (US ≈ 27 %), devices 60/30/10 %, 5 % NULL amounts, ~200k user ids. ' +
      'Dataset: dimensions country, device; metrics amount, duration_ms; distinct user_id; 1m resolution with 1h and 1d tiers.',
  );
  lines.push('');
  if (OUT === join(REPO, reportName(DEFAULT_ROWS))) lines.push(...largeRun());
  return lines.join('\n');
}

/**
 * The goals and panels of the last large run (BENCHMARKS-10M.md), repeated with its date, so
 * that this report shows every goal: that run is long and run once, by hand.
 */
function largeRun(): string[] {
  let text: string;
  try {
    text = readFileSync(LARGE_REPORT, 'utf8');
  } catch {
    return []; // never run here
  }
  const section = (title: string) => {
    const at = text.indexOf(`\n## ${title}\n`);
    if (at < 0) return [];
    const end = text.indexOf('\n## ', at + 1);
    return text
      .slice(at + 1, end < 0 ? undefined : end)
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.replace(/^#(#+) /, '#$1# '));
  };
  const header = text.split('\n').find((line) => line.startsWith('`npm run bench`')) ?? '';
  return [
    `## The 10M-row run (${reportName(10_000_000)})`,
    '',
    `\`BENCH_ROWS=10000000 npm run bench\`, its own report; repeated here: ${header.replace(/^`npm run bench` \(backend\/bench\/run.ts\), /, '')}`,
    '',
    '### Goals at 10,000,000 rows',
    ...section('Goals'),
    '',
    '### Panels at 10,000,000 rows',
    ...section('Panels'),
    '',
  ];
}

main().catch((err: unknown) => {
  console.error('bench failed:', err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
