/**
 * Issue 13: the Redis store on a real Redis Cluster the test starts (3 masters, 3 replicas).
 * Datasets spread over the masters by their hash tag and answer what PostgreSQL computes; a
 * master killed in the middle of a sync hands its slots to its replica, and the sync goes on
 * to the same totals as SQL, nothing counted twice.
 */
import type { DatasetSpec } from '../../src/config/dataset';
import { RedisCacheBackend } from '../../src/query/cache';
import { RedisStore } from '../../src/store/redis';
import { StoreUnavailableError } from '../../src/store/types';
import { masters, scanKeys } from '../../src/store/redis-client';
import { DatasetKeys } from '../../src/store/redis-keys';
import type { ChangeEvent, RunEvent } from '../../src/sync/engine';
import { datasetSpec, uniquePrefix } from '../helpers';
import { harness, row, T0 as APP_T0 } from '../http/harness';
import {
  COUNTRY_SQL,
  DEVICE_SQL,
  eventsSpec,
  expectHourlyEqual,
  pgEngine,
  PgSchema,
  sqlHourly,
  storeHourly,
  ThrowawayCluster,
  until,
} from './support';

const T0 = Date.UTC(2026, 0, 5);
const RANGE = { from: T0 - 86_400_000, to: T0 + 3 * 86_400_000 };

const cluster = new ThrowawayCluster(3, 1_000);
const schema = new PgSchema();
const prefix = uniquePrefix();
let store: RedisStore;

async function fill(table: string, rows: number, seed: number): Promise<void> {
  await schema.sql(`
    SELECT setseed(${seed});
    INSERT INTO ${table} (ts, deleted_at, country, device, amount, duration_ms, user_id)
    SELECT to_timestamp(${T0 / 1000}) + random() * interval '2 days',
           CASE WHEN random() < 0.02 THEN now() END,
           ${COUNTRY_SQL}, ${DEVICE_SQL},
           round((random() * 1000)::numeric, 2), (random() * 5000)::int, 'u' || floor(random() * 500)
    FROM generate_series(1, ${rows})`);
}

/** Updates, moves in time and soft deletes of some rows. */
async function churn(table: string): Promise<void> {
  await schema.sql(`UPDATE ${table} SET amount = amount + 1, country = 'FR' WHERE id % 7 = 0`);
  await schema.sql(`UPDATE ${table} SET ts = ts + interval '3 hours' WHERE id % 11 = 0`);
  await schema.sql(`UPDATE ${table} SET deleted_at = now() WHERE id % 13 = 0`);
}

/** The master that serves a dataset's slot now, as host:port. */
async function masterOf(spec: DatasetSpec): Promise<string> {
  const slot = Number(await store.redis.cluster('KEYSLOT', new DatasetKeys(prefix, spec.name).state));
  const shards = await store.redis.cluster('SLOTS');
  const master = shards.find(([from, to]) => slot >= from && slot <= to)?.[2];
  if (!master) throw new Error(`no master serves slot ${slot}`);
  return `${master[0]}:${master[1]}`;
}

beforeAll(async () => {
  await cluster.start();
  await schema.create();
  store = await RedisStore.connect(cluster.url, prefix);
}, 60_000);

afterAll(async () => {
  await store?.close();
  await cluster.stop();
  await schema.drop();
});

describe('on a Redis Cluster', () => {
  // Names whose hash tags fall on the three different masters of a 3-master cluster.
  const names = ['orders', 'clicks', 'events'];

  it('spreads datasets over the masters, each on one slot, and answers what SQL computes', async () => {
    const specs = await Promise.all(
      names.map(async (name, i) => {
        const table = await schema.createEvents(name);
        await fill(table, 4_000, 0.1 * (i + 1));
        return { table, spec: eventsSpec(table, { name, batchSize: 700 }) };
      }),
    );
    expect(new Set(await Promise.all(specs.map(({ spec }) => masterOf(spec)))).size).toBe(3);

    for (const { table, spec } of specs) {
      const engine = pgEngine(spec, store);
      try {
        await engine.syncOnce();
        expectHourlyEqual(await storeHourly(store, spec, RANGE), await sqlHourly(schema, table));
        await churn(table);
        await engine.syncOnce();
        expectHourlyEqual(await storeHourly(store, spec, RANGE), await sqlHourly(schema, table));
      } finally {
        await engine.close();
      }
    }

    // Each dataset's keys are on its master alone, all in the slot of its hash tag.
    for (const { spec } of specs) {
      const keys = new DatasetKeys(prefix, spec.name);
      const slot = Number(await store.redis.cluster('KEYSLOT', keys.state));
      const found = new Map<string, number>();
      for (const node of masters(store.redis)) {
        let count = 0;
        let cursor = '0';
        do {
          const [next, page] = await node.scan(cursor, 'MATCH', `${keys.prefix}*`, 'COUNT', 1000);
          cursor = next;
          count += page.length;
          for (const key of page.slice(0, 5)) expect(Number(await node.cluster('KEYSLOT', key))).toBe(slot);
        } while (cursor !== '0');
        if (count > 0) found.set(`${node.options.host}:${node.options.port}`, count);
      }
      expect([...found.keys()]).toEqual([await masterOf(spec)]);
    }

    // A reset (a resync from scratch) finds the dataset's keys on its master and keeps only its history.
    const { spec } = specs[0]!;
    const keys = new DatasetKeys(prefix, spec.name);
    // The engines gave the lease up when they closed: the reset is this test's write.
    await store.acquireLease(spec.name, 'test', 3_600_000);
    await store.resetDataset(spec.name);
    const left: string[] = [];
    await scanKeys(store.redis, `${keys.prefix}*`, async (page) => void left.push(...page));
    expect(left.sort()).toEqual([keys.state, ...keys.keptOnReset.filter((k) => left.includes(k))].sort());
    expect(left).toContain(keys.status);

    // Health asks every master; the response cache's keys land on whichever slots they hash to.
    await store.ping();
    const cache = new RedisCacheBackend(store.redis, prefix);
    for (let i = 0; i < 20; i++) await cache.set(`q${i}`, `answer ${i}`, 60_000);
    for (let i = 0; i < 20; i++) expect(await cache.get(`q${i}`)).toBe(`answer ${i}`);
  }, 60_000);

  it('serves the HTTP API from the cluster: health asks every master, answers come from the response cache', async () => {
    const own = await RedisStore.connect(cluster.url, prefix);
    const h = await harness({
      store: own, // closed with the app
      spec: datasetSpec({ name: 'views', retention: '3650d' }),
      upstream: (source) => {
        source.rows = [row(1, APP_T0, 'US', 2), row(2, APP_T0 + 60_000, 'DE', 3)];
      },
    });
    try {
      await h.syncNow();
      const health = await h.app.inject({ method: 'GET', url: '/api/health' });
      expect(health.json().checks.store).toEqual({
        kind: 'redis',
        status: 'ok',
        message: 'Redis is reachable',
      });
      const query = () =>
        h.app.inject({
          method: 'POST',
          url: '/api/query',
          payload: {
            range: { from: APP_T0, to: APP_T0 + 3_600_000 },
            intervalMs: 3_600_000,
            maxDataPoints: 10,
            queries: [{ refId: 'A', dataset: 'views', aggregations: ['count', 'sum(amount)'] }],
          },
        });
      const first = await query();
      expect(first.statusCode).toBe(200);
      expect(first.json().results.A.frames[0].data.values.slice(1)).toEqual([[2], [5]]);
      const second = await query();
      expect(second.headers['x-cache']).toBe('HIT');
      expect(second.body).toBe(first.body);
    } finally {
      await h.app.close();
    }
  });

  it('goes on through a failover of the master that holds the dataset, to the totals SQL has', async () => {
    const table = await schema.createEvents('failover');
    await fill(table, 12_000, 0.7);
    const spec = eventsSpec(table, { name: 'failover', batchSize: 400 });
    // Small pieces: batches go through journals, so the kill can fall between pieces too.
    const failing = await RedisStore.connect(cluster.url, prefix, { pieceLimits: { cost: 600 } });
    const engine = pgEngine(spec, failing);
    const runs: RunEvent[] = [];
    const changes: { at: number; event: ChangeEvent }[] = [];
    engine.engine.on('run', (run) => runs.push(run));
    engine.engine.on('change', (event) => changes.push({ at: Date.now(), event }));
    try {
      const doomed = await masterOf(spec);
      await store.register(spec); // this test's reads: the engine's store holds the lease
      // The first sync runs on in the background; it fails when the master dies and retries.
      const first = engine.syncOnce().catch(() => undefined);
      await until(async () => engine.engine.status().recordsApplied >= 3_000, 30_000, '3,000 records synced');
      await cluster.kill(Number(doomed.split(':')[1]));
      const killedAt = Date.now();
      expect(engine.engine.status().backfill).not.toBeNull(); // mid-sync: the backfill is under way

      // Meanwhile requests read the dataset: each gets its answer or "not now" (503), nothing else.
      const alive = cluster.nodes.filter((n) => `127.0.0.1:${n.port}` !== doomed);
      const settled = cluster.waitHealthy(alive).then(() => Date.now());
      const reads = { ok: 0, unavailable: 0, other: [] as string[] };
      let done = false;
      void settled.finally(() => (done = true));
      while (!done) {
        try {
          await store.readState(spec.name);
          reads.ok++;
        } catch (err) {
          if (err instanceof StoreUnavailableError) reads.unavailable++;
          else reads.other.push(String(err));
        }
        // A refusal comes without I/O: let timers and the child processes' output in.
        await new Promise((resolve) => setImmediate(resolve));
      }
      const settledAt = await settled;
      expect(reads.other).toEqual([]);
      const promoted = await masterOf(spec);
      expect(promoted).not.toBe(doomed);

      const rows = await schema.sql<{ n: string }>(
        `SELECT count(*)::text AS n FROM ${table} WHERE deleted_at IS NULL`,
      );
      await until(
        async () => {
          const state = await failing.readState(spec.name).catch(() => null);
          return engine.engine.status().state === 'idle' && state?.records === Number(rows[0]!.n);
        },
        30_000,
        'the sync to end with every row',
      );
      await first;
      expectHourlyEqual(await storeHourly(failing, spec, RANGE), await sqlHourly(schema, table));

      // The client's retries may carry the sync over the failover; a run that fails fails as
      // "not now" from the store, never as anything else.
      const failures = runs.filter((r) => r.outcome === 'failure');
      expect(failures.map((r) => r.error?.origin)).toEqual(failures.map(() => 'store'));
      // Nothing commits while the dataset's slot has no master: the first change after the kill
      // is the sync going on, on the promoted replica.
      const resumed = changes.find((c) => c.at > killedAt);
      expect(resumed).toBeDefined();
      if (process.env.CLUSTER_REPORT) {
        process.stdout.write(
          `cluster failover: the sync committed again ${resumed!.at - killedAt} ms after the kill, ` +
            `every node saw the new master after ${settledAt - killedAt} ms; ` +
            `reads meanwhile ${reads.ok} answered, ${reads.unavailable} "not now"; ` +
            `${failures.length} failed sync runs; ${rows[0]!.n} records, equal to SQL\n`,
        );
      }

      // And it keeps syncing on the promoted master.
      await churn(table);
      await engine.syncOnce();
      expectHourlyEqual(await storeHourly(failing, spec, RANGE), await sqlHourly(schema, table));
    } finally {
      await engine.close();
      await failing.close();
    }
  }, 90_000);
});
