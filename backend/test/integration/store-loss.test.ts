/**
 * Issue 2, store loss: Redis loses the dataset in the middle of a sync run (FLUSHALL, or a
 * restart of a server without persistence). The engine must notice, say `resyncing`, read the
 * upstream again from the start and end equal to SQL. Issue 11: a loss while idle is noticed by
 * the first reader, and the resync is marked in Redis so failed runs and restarts keep saying
 * the totals are incomplete until it has caught up.
 */
import { Redis } from 'ioredis';
import { freshnessOf } from '../../src/query/freshness';
import { SourceError } from '../../src/sources/types';
import { RedisStore } from '../../src/store/redis';
import type { RunEvent } from '../../src/sync/engine';
import type { SyncStateName } from '../../src/sync/status';
import { uniquePrefix } from '../helpers';
import {
  COUNTRY_SQL,
  DAY,
  DEVICE_SQL,
  eventsSpec,
  expectHourlyEqual,
  pgEngine,
  PgSchema,
  sqlHourly,
  storeHourly,
  ThrowawayRedis,
  nextEvent,
} from './support';

const T0 = Date.UTC(2026, 0, 5);
const RANGE = { from: T0 - DAY, to: T0 + 4 * DAY };

const schema = new PgSchema();
const prefix = uniquePrefix();
const server = new ThrowawayRedis();
let table: string;
let store: RedisStore;
let admin: Redis;
let sync: ReturnType<typeof pgEngine>;
/** Runs before the n-th fetch of the source from now on (1 = the next), once. */
let beforeFetch: { at: number; action: () => Promise<void> } | null = null;

const spec = () => eventsSpec(table, { batchSize: 1000 });

async function addRows(count: number, seed: number): Promise<void> {
  await schema.sql(
    `SELECT setseed(${seed});
     INSERT INTO ${table} (ts, country, device, amount, duration_ms, user_id)
     SELECT to_timestamp(${T0 / 1000}) + random() * interval '3 days', ${COUNTRY_SQL}, ${DEVICE_SQL},
            CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * 1000)::numeric, 2) END,
            (random() * 5000)::int, 'u' || floor(random() * 3000)
     FROM generate_series(1, ${count});
     UPDATE ${table} SET amount = amount + 1, ts = ts + interval '5 minutes'
       WHERE id IN (SELECT id FROM ${table} ORDER BY random() LIMIT 300);
     UPDATE ${table} SET deleted_at = now() WHERE id IN (SELECT id FROM ${table} ORDER BY random() LIMIT 100);`,
  );
}

/**
 * Asks for a sync and waits until a run succeeds: runs fail while Redis is away, and the
 * engine retries on its own (backoff, circuit breaker) until one does.
 */
async function syncUntilSuccess(timeoutMs = 30_000): Promise<void> {
  const success = nextEvent<RunEvent>(sync.engine, 'run', (run) => run.outcome === 'success', timeoutMs);
  void sync.engine.syncNow();
  await success;
}

async function expectEqualToSql(): Promise<void> {
  const [{ live }] = (await schema.sql<{ live: string }>(
    `SELECT count(*)::text AS live FROM ${table} WHERE deleted_at IS NULL`,
  )) as [{ live: string }];
  expect((await store.readState('events'))!.records).toBe(Number(live));
  expectHourlyEqual(await storeHourly(store, spec(), RANGE), await sqlHourly(schema, table));
}

beforeAll(async () => {
  await schema.create();
  table = await schema.createEvents();
  await addRows(20_000, 0.5);
  await server.start();
  store = await RedisStore.connect(server.url, prefix);
  admin = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  admin.on('error', () => undefined);
  // The service's retry timings, scaled down: the circuit half-opens after 300 ms, not 30 s.
  sync = pgEngine(spec(), store, {
    backoff: { initialMs: 20, maxMs: 200 },
    breaker: { threshold: 5, halfOpenAfterMs: 300 },
  });
  const fetch = sync.source.fetch.bind(sync.source);
  sync.source.fetch = async (request) => {
    if (beforeFetch && --beforeFetch.at === 0) {
      const { action } = beforeFetch;
      beforeFetch = null;
      await action();
    }
    return fetch(request);
  };
  await sync.syncOnce();
  await expectEqualToSql();
});

afterAll(async () => {
  await sync?.close();
  await store?.close();
  admin?.disconnect();
  await server.stop();
  await schema.drop();
});

function watchStates(): SyncStateName[] {
  const states: SyncStateName[] = [];
  sync.engine.on('status', (s) => {
    if (states.at(-1) !== s.state) states.push(s.state);
  });
  return states;
}

it('notices a FLUSHALL in the middle of a run, resyncs and ends equal to SQL', async () => {
  const before = (await store.readState('events'))!;
  await addRows(5_000, 0.6);
  // Two batches of this run commit, then everything goes.
  beforeFetch = {
    at: 3,
    action: async () => {
      await admin.flushall();
    },
  };
  const states = watchStates();
  await syncUntilSuccess();
  expect(beforeFetch).toBeNull();
  expect(states).toContain('resyncing');
  expect(states.at(-1)).toBe('idle');
  const after = (await store.readState('events'))!;
  expect(after.generation).not.toBe(before.generation);
  await expectEqualToSql();
});

it('notices a restart of Redis (without persistence) in the middle of a run, resyncs and ends equal to SQL', async () => {
  const before = (await store.readState('events'))!;
  await addRows(5_000, 0.7);
  beforeFetch = {
    at: 2,
    action: async () => {
      await server.stop();
      await server.start();
    },
  };
  const states = watchStates();
  await syncUntilSuccess();
  expect(beforeFetch).toBeNull();
  expect(states).toContain('resyncing');
  expect(states.at(-1)).toBe('idle');
  expect((await store.readState('events'))!.generation).not.toBe(before.generation);
  await expectEqualToSql();
});

it('notices a FLUSHALL while idle on the read path, and keeps the resync through a failed run and a restart', async () => {
  await sync.syncOnce();
  const lastSuccessAt = sync.engine.status().lastSuccessAt;
  // The resync commits two batches, then the upstream fails.
  beforeFetch = {
    at: 3,
    action: async () => {
      throw new SourceError('connection terminated unexpectedly', 'transient');
    },
  };
  const failed = nextEvent<RunEvent>(sync.engine, 'run', (run) => run.outcome === 'failure', 30_000);
  await admin.flushall();
  // What a query does before it answers: the loss is noticed there, not at the next run.
  await sync.engine.checkStore();
  expect(sync.engine.status()).toMatchObject({ state: 'resyncing' });
  expect(freshnessOf(spec(), sync.engine.status(), Date.now())).toMatchObject({
    incomplete: true,
    notice: { text: expect.stringContaining('totals are incomplete until it catches up') },
  });
  await failed;
  const since = sync.engine.status().resyncSince!;
  expect(sync.engine.status()).toMatchObject({ state: 'backoff', resyncSince: since, records: 2000 });
  expect(JSON.parse((await admin.hget(`${prefix}:{events}:state`, 'resync'))!)).toMatchObject({ since });
  await sync.engine.stop();

  // Another process takes over the same Redis: until its first run ends it reports what Redis holds.
  const next = pgEngine(spec(), store);
  const restarted = next.engine;
  await restarted.restore();
  expect(restarted.status()).toMatchObject({
    state: 'resyncing',
    resyncSince: since,
    records: 2000,
    lastSuccessAt,
  });
  expect(freshnessOf(spec(), restarted.status(), Date.now()).incomplete).toBe(true);
  const caughtUp = nextEvent<RunEvent>(restarted, 'run', (run) => run.outcome === 'success', 30_000);
  restarted.start();
  await caughtUp;
  await next.close();
  expect(restarted.status()).toMatchObject({ state: 'idle', resyncSince: null });
  expect(await admin.hget(`${prefix}:{events}:state`, 'resync')).toBeNull();
  expect((await store.readRegions('events', 0, Date.now(), 10)).map((r) => r.kind)).toContain('resync');
  await expectEqualToSql();
});
