/**
 * Issue 2, the cursor's edge cases against a real table: many rows sharing one updated_at
 * across batch boundaries, and rows committed late with a cursor behind the synced one.
 */
import type { RunEvent } from '../../src/sync/engine';
import type { RedisStore } from '../../src/store/redis';
import { redisStore } from '../helpers';
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
} from './support';

const T0 = Date.UTC(2026, 0, 5);
const RANGE = { from: T0 - DAY, to: T0 + 3 * DAY };

const schema = new PgSchema();
const cleanups: (() => Promise<void>)[] = [];

beforeAll(() => schema.create());
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await schema.drop();
});

async function redis(): Promise<RedisStore> {
  const { store, cleanup } = await redisStore();
  cleanups.push(cleanup);
  return store;
}

async function liveCount(table: string): Promise<number> {
  const [row] = await schema.sql<{ n: string }>(
    `SELECT count(*)::text AS n FROM ${table} WHERE deleted_at IS NULL`,
  );
  return Number(row!.n);
}

it('reads 10,000 rows sharing one updated_at in batches of 700: every row, once', async () => {
  const table = await schema.createEvents('same_cursor');
  await schema.sql(
    `INSERT INTO ${table} (ts, updated_at, country, device, amount, duration_ms, user_id)
     SELECT to_timestamp(${T0 / 1000}) + random() * interval '2 days', now() - interval '1 hour',
            ${COUNTRY_SQL}, ${DEVICE_SQL}, round((random() * 100)::numeric, 2), 1, 'u' || i
     FROM generate_series(1, 10000) i`,
  );
  const store = await redis();
  const spec = eventsSpec(table, { batchSize: 700 });
  const sync = pgEngine(spec, store);
  cleanups.push(() => sync.close());
  const fetched: number[] = [];
  const fetch = sync.source.fetch.bind(sync.source);
  sync.source.fetch = async (request) => {
    const page = await fetch(request);
    fetched.push(page.records.length);
    return page;
  };

  await sync.syncOnce();
  expect(await liveCount(table)).toBe(10_000);
  expect((await store.readState('events'))!.records).toBe(10_000);
  // 14 full pages and one of 200 in the first run; the second run finds nothing new.
  expect(fetched).toEqual([...Array<number>(14).fill(700), 200, 0]);
  expectHourlyEqual(await storeHourly(store, spec, RANGE), await sqlHourly(schema, table));

  // Every row changes again, all to one new shared updated_at.
  const runs: RunEvent[] = [];
  sync.engine.on('run', (run) => runs.push(run));
  await schema.sql(
    `UPDATE ${table} SET amount = amount + 1, ts = ts + interval '7 minutes', updated_at = now() - interval '1 second'`,
  );
  await sync.syncOnce();
  expect(runs.reduce((n, r) => n + r.upserts, 0)).toBe(10_000);
  expect((await store.readState('events'))!.records).toBe(10_000);
  expectHourlyEqual(await storeHourly(store, spec, RANGE), await sqlHourly(schema, table));
});

it('picks up a late commit inside the lookback; one older than the lookback is not read (documented)', async () => {
  const table = await schema.createEvents('late');
  const insert = (country: string, updatedAt: string) =>
    schema.sql<{ id: string }>(
      `INSERT INTO ${table} (ts, updated_at, country, device, amount, duration_ms, user_id)
       VALUES (to_timestamp(${(T0 + 3_600_000) / 1000}), ${updatedAt}, $1, 'mobile', 10, 1, 'u1') RETURNING id`,
      [country],
    );
  // 500 rows synced in the last half hour.
  await schema.sql(
    `INSERT INTO ${table} (ts, updated_at, country, device, amount, duration_ms, user_id)
     SELECT to_timestamp(${T0 / 1000}) + random() * interval '1 day',
            now() - interval '30 minutes' + i * interval '2 seconds',
            ${COUNTRY_SQL}, ${DEVICE_SQL}, round((random() * 100)::numeric, 2), 1, 'u' || i
     FROM generate_series(1, 500) i`,
  );
  const store = await redis();
  const spec = eventsSpec(table, { batchSize: 100, lookback: '10m' });
  const sync = pgEngine(spec, store);
  cleanups.push(() => sync.close());

  // A transaction that stamps its row now but commits only after the next sync has run.
  const long = await schema.pool.connect();
  try {
    await long.query('BEGIN');
    await long.query(
      `INSERT INTO ${table} (ts, country, device, amount, duration_ms, user_id)
       VALUES (to_timestamp(${(T0 + 3_600_000) / 1000}), 'LONG_TXN', 'mobile', 10, 1, 'u1')`,
    );
    await insert('AFTER', 'clock_timestamp()');
    await sync.syncOnce();
    await long.query('COMMIT');
  } finally {
    long.release();
  }
  const committed = (await store.readState('events'))!.position!;
  const synced = await storeHourly(store, spec, { from: T0, to: T0 + DAY });
  expect([...synced.keys()].some((k) => k.endsWith('|AFTER'))).toBe(true);
  expect([...synced.keys()].some((k) => k.endsWith('|LONG_TXN'))).toBe(false);

  // Two more rows commit late, stamped behind the committed cursor: 5 minutes (inside the
  // 10-minute lookback) and 15 minutes (outside it).
  const behind = (minutes: number) =>
    `'epoch'::timestamptz + ${committed.cursor}::bigint * interval '1 microsecond' - interval '${minutes} minutes'`;
  await insert('LATE_IN', behind(5));
  const [outside] = await insert('LATE_OUT', behind(15));

  const runs: RunEvent[] = [];
  sync.engine.on('run', (run) => runs.push(run));
  await sync.syncOnce();
  // Only the two late rows are new; re-reading the window counted nothing twice.
  expect(runs.map((r) => [r.outcome, r.upserts])).toEqual([['success', 2]]);
  const countries = new Set([...(await storeHourly(store, spec, RANGE)).keys()].map((k) => k.split('|')[1]));
  expect(countries.has('LONG_TXN')).toBe(true);
  expect(countries.has('LATE_IN')).toBe(true);
  expect(countries.has('LATE_OUT')).toBe(false);
  expect((await store.readState('events'))!.records).toBe((await liveCount(table)) - 1);
  // The position never moves backwards for a re-read.
  expect((await store.readState('events'))!.position).toEqual(committed);

  // Documented: such a row arrives once it changes again (its cursor moves forward).
  await schema.sql(`UPDATE ${table} SET amount = 11 WHERE id = $1`, [outside!.id]);
  await sync.syncOnce();
  expect((await store.readState('events'))!.records).toBe(await liveCount(table));
  expectHourlyEqual(await storeHourly(store, spec, RANGE), await sqlHourly(schema, table));
});
