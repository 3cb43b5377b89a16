/**
 * Issue 13: several service processes (src/main.ts, started here) on one Redis. Exactly one
 * syncs each dataset, under a lease with a fencing token; SIGKILL the holder and another takes
 * over within the lease's TTL; SIGSTOP the holder past its TTL and SIGCONT it, and it writes
 * nothing more. Totals end equal to SQL, read through every replica.
 */
import { Redis } from 'ioredis';
import { DatasetKeys } from '../../src/store/redis-keys';
import { RedisStore } from '../../src/store/redis';
import type { SyncEvent } from '../../src/store/types';
import {
  closeTo,
  COUNTRY_SQL,
  DAY,
  DEVICE_SQL,
  eventsDataset,
  eventsSpec,
  expectHourlyEqual,
  PgSchema,
  sqlHourly,
  storeHourly,
  ThrowawayRedis,
  until,
} from './support';
import { ServiceProcess } from './service-process';

const T0 = Date.UTC(2026, 0, 5);
const ROWS = 20_000;
const TTL_MS = 2_000;
const RANGE = { from: T0 - DAY, to: T0 + 4 * DAY };
const DATASETS = ['events', 'orders'];

const schema = new PgSchema();
const redis = new ThrowawayRedis();
const services = new Set<ServiceProcess>();
let table: string;
let admin: Redis;

interface LeaseView {
  holder: string | null;
  token: number | null;
  heldHere: boolean;
  replica: string;
}

beforeAll(async () => {
  await Promise.all([redis.start(), schema.create()]);
  admin = new Redis(redis.url);
  table = await schema.createEvents();
  await schema.sql(
    `INSERT INTO ${table} (ts, country, device, amount, duration_ms, user_id)
     SELECT to_timestamp(${T0 / 1000}) + (i::float8 / ${ROWS}) * interval '2 days',
            ${COUNTRY_SQL}, ${DEVICE_SQL}, round((random() * 1000)::numeric, 2),
            (random() * 5000)::int, 'u' || floor(random() * 500)
     FROM generate_series(1, ${ROWS}) i`,
  );
}, 60_000);

afterAll(async () => {
  await Promise.all([...services].map((s) => s.kill()));
  await Promise.all([...services].map((s) => s.stop()));
  admin?.disconnect();
  await redis.stop();
  await schema.drop();
});

/** A service process of the replica set under `prefix`, syncing DATASETS (all the same table). */
function service(prefix: string): ServiceProcess {
  const dataset = (name: string) => ({
    ...eventsDataset(table, { batchSize: 1000 }),
    name,
    sync: { interval: '500ms', batchSize: 1000, lag: '0s', lookback: '0s' },
    staleAfter: '1m',
  });
  const s = new ServiceProcess({
    server: { rateLimitPerMinute: 0 },
    redis: { url: redis.url, prefix },
    lease: { ttl: `${TTL_MS}ms` },
    datasets: DATASETS.map(dataset),
  });
  services.add(s);
  return s;
}

async function leaseOf(s: ServiceProcess, dataset: string): Promise<LeaseView> {
  return (await s.get<{ status: { lease: LeaseView } }>(`/api/datasets/${dataset}`)).status.lease;
}

/** The lease as Redis holds it. */
async function storedLease(
  prefix: string,
  dataset: string,
): Promise<{ holder: string | null; token: number }> {
  const [holder, token] = await admin.hmget(new DatasetKeys(prefix, dataset).lease, 'holder', 'token');
  return { holder: holder ?? null, token: Number(token ?? 0) };
}

async function liveRows(): Promise<number> {
  const [row] = await schema.sql<{ n: string }>(
    `SELECT count(*)::text AS n FROM ${table} WHERE deleted_at IS NULL`,
  );
  return Number(row!.n);
}

/** Waits until the dataset's copy in Redis holds every live row, with hourly totals equal to SQL's. */
async function expectEqualToSql(prefix: string, dataset: string, timeoutMs = 60_000): Promise<void> {
  const store = await RedisStore.connect(redis.url, prefix);
  try {
    const spec = { ...eventsSpec(table), name: dataset };
    await store.register(spec);
    const want = await liveRows();
    const sql = await sqlHourly(schema, table);
    const same = async () => {
      const got = await storeHourly(store, spec, RANGE);
      return [...sql].every(
        ([key, [n, total]]) => got.get(key)?.[0] === n && closeTo(got.get(key)![1], total),
      );
    };
    await until(
      async () => (await store.readState(dataset))?.records === want && (await same()),
      timeoutMs,
      `${dataset} to hold ${want} records with SQL's totals`,
    );
    expectHourlyEqual(await storeHourly(store, spec, RANGE), sql);
  } finally {
    await store.close();
  }
}

/** Runs recorded in the dataset's sync events, by the replica that ran them. */
async function runsBy(prefix: string, dataset: string): Promise<Map<string, SyncEvent[]>> {
  const raw = await admin.lrange(new DatasetKeys(prefix, dataset).events, 0, -1);
  const by = new Map<string, SyncEvent[]>();
  for (const event of raw.map((text) => JSON.parse(text) as SyncEvent)) {
    const list = by.get(event.holder ?? '?') ?? [];
    list.push(event);
    by.set(event.holder ?? '?', list);
  }
  return by;
}

/** The count of a metric's series with these labels on one replica's /metrics (0 when absent). */
async function metric(s: ServiceProcess, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

it('three replicas: exactly one syncs each dataset; SIGKILL the holder, another takes over within the TTL; totals equal SQL', async () => {
  const prefix = `replicas-${Date.now()}`;
  const replicas = [service(prefix), service(prefix), service(prefix)];
  await Promise.all(replicas.map((s) => s.start()));
  for (const dataset of DATASETS) await expectEqualToSql(prefix, dataset);

  // Every replica names the same holder and token; exactly one holds each dataset, and only it ran syncs.
  const holders = new Map<string, { holder: string; token: number }>();
  for (const dataset of DATASETS) {
    const views = await Promise.all(replicas.map((s) => leaseOf(s, dataset)));
    expect(views.filter((v) => v.heldHere)).toHaveLength(1);
    const stored = await storedLease(prefix, dataset);
    for (const view of views) expect({ holder: view.holder, token: view.token }).toEqual(stored);
    // A run is recorded (its event, its metric) when it ends, after its batches are committed.
    const successes = () =>
      Promise.all(
        replicas.map((s) => metric(s, 'livesync_sync_runs_total', `dataset="${dataset}",outcome="success"`)),
      );
    await until(
      async () => (await runsBy(prefix, dataset)).size > 0 && (await successes()).some((n) => n > 0),
      30_000,
      `a recorded run of ${dataset}`,
    );
    expect([...(await runsBy(prefix, dataset)).keys()]).toEqual([stored.holder]);
    const runs = await successes();
    expect(runs.filter((n) => n > 0)).toHaveLength(1);
    holders.set(dataset, { holder: stored.holder!, token: stored.token });
  }

  // Kill the holder of `events` (it may hold `orders` too); change the upstream meanwhile.
  const first = holders.get('events')!;
  const victim = await holderProcess(replicas, 'events');
  const killedAt = Date.now();
  await victim.kill();
  await schema.sql(`
    UPDATE ${table} SET amount = amount + 1 WHERE id % 7 = 0;
    UPDATE ${table} SET deleted_at = now() WHERE id % 50 = 0;
    INSERT INTO ${table} (ts, country, device, amount, duration_ms, user_id)
      SELECT to_timestamp(${T0 / 1000}) + random() * interval '2 days', ${COUNTRY_SQL}, ${DEVICE_SQL}, 1.5, 10, 'u1'
      FROM generate_series(1, 500);`);
  const takeoverMs = await until(
    async () => {
      const { holder } = await storedLease(prefix, 'events');
      return holder !== null && holder !== first.holder;
    },
    TTL_MS + 2_000,
    'another replica to take the lease of events over',
  );
  const second = await storedLease(prefix, 'events');
  expect(second.token).toBeGreaterThan(first.token);
  report(
    `takeover after SIGKILL: ${Date.now() - killedAt} ms (lease TTL ${TTL_MS} ms; polled ${takeoverMs} ms)`,
  );

  const survivors = replicas.filter((s) => s !== victim);
  for (const dataset of DATASETS) await expectEqualToSql(prefix, dataset);
  // Every surviving replica answers the same totals, followers too (response caches included).
  for (const s of survivors) {
    const lease = await leaseOf(s, 'events');
    expect(lease.holder).toBe(second.holder);
    expect(await totalCount(s)).toBe(await liveRows());
  }

  // Paused through a replica that does not hold the lease: the holder obeys, and so does the next
  // holder after a restart; resumed, the changes made meanwhile are synced.
  const holder = await holderProcess(survivors, 'events');
  const follower = survivors.find((s) => s !== holder)!;
  expect((await follower.post('/api/datasets/events/pause')).status).toBe(202);
  const stateOf = async (s: ServiceProcess) =>
    (await s.get<{ status: { state: string } }>('/api/datasets/events')).status.state;
  await until(async () => (await stateOf(holder)) === 'paused', 10_000, 'the holder to pause');
  const records = await admin.hget(new DatasetKeys(prefix, 'events').state, 'records');
  await schema.sql(`UPDATE ${table} SET deleted_at = now() WHERE id % 13 = 0 AND deleted_at IS NULL`);
  await holder.stop();
  await until(
    async () => (await leaseOf(follower, 'events')).heldHere,
    TTL_MS * 3,
    'the follower to take over',
  );
  await until(async () => (await stateOf(follower)) === 'paused', 10_000, 'the new holder to stay paused');
  expect(await admin.hget(new DatasetKeys(prefix, 'events').state, 'records')).toBe(records);
  expect((await follower.post('/api/datasets/events/resume')).status).toBe(202);
  await expectEqualToSql(prefix, 'events');
}, 240_000);

/** What the dataset's state commits (trims by the holder move its other fields). */
async function committed(keys: DatasetKeys): Promise<(string | null)[]> {
  return admin.hmget(keys.state, 'gen', 'version', 'records', 'cursor', 'cursorId');
}

/**
 * The committed state once the holder has caught up: unchanged across two of its runs (a run
 * under way when SQL's totals were first matched may still commit the rest of its batches).
 */
async function settled(holder: ServiceProcess, keys: DatasetKeys): Promise<(string | null)[]> {
  const runs = () => metric(holder, 'livesync_sync_runs_total', 'dataset="events",outcome="success"');
  let state: (string | null)[] = [];
  await until(
    async () => {
      const seen = await committed(keys);
      const from = await runs();
      await until(async () => (await runs()) >= from + 2, 30_000, 'two more runs of the holder');
      state = await committed(keys);
      return JSON.stringify(state) === JSON.stringify(seen);
    },
    60_000,
    'the holder to catch up',
  );
  return state;
}

/**
 * The dataset's total count as one replica answers it. An overloaded replica (the machine is
 * shared) answers 503 with Retry-After, as it should: asked again until it answers.
 */
async function totalCount(s: ServiceProcess): Promise<number> {
  type Answer = { results: { A: { frames: { data: { values: number[][] } }[] } } };
  let answer: { status: number; body: Answer } | null = null;
  await until(
    async () => {
      answer = await s.post<Answer>('/api/query', {
        range: RANGE,
        intervalMs: DAY,
        maxDataPoints: 10,
        queries: [{ refId: 'A', dataset: 'events', aggregations: ['count'], format: 'table' }],
      });
      if (answer.status !== 503) expect(answer.status).toBe(200);
      return answer.status === 200;
    },
    30_000,
    'an answer that is not 503',
  );
  return answer!.body.results.A.frames[0]!.data.values[1]!.reduce((a, b) => a + b, 0);
}

/** A measured number for the run's output (the takeover time, the fencing outcome). */
function report(line: string): void {
  process.stdout.write(`replicas.test: ${line}\n`);
}

/** The process whose /api/datasets says it holds the dataset's lease. */
async function holderProcess(replicas: ServiceProcess[], dataset: string): Promise<ServiceProcess> {
  for (const s of replicas) if ((await leaseOf(s, dataset)).heldHere) return s;
  throw new Error(`no replica holds ${dataset}`);
}

it('SIGSTOP the holder past its TTL, SIGCONT it: its writes are refused, nothing is counted twice', async () => {
  const prefix = `stopped-${Date.now()}`;
  const replicas = [service(prefix), service(prefix)];
  await Promise.all(replicas.map((s) => s.start()));
  await expectEqualToSql(prefix, 'events');
  const paused = await holderProcess(replicas, 'events');
  const other = replicas.find((s) => s !== paused)!;
  const before = await storedLease(prefix, 'events');
  const keys = new DatasetKeys(prefix, 'events');

  // A change of every row: the holder's next run is many batches; stop it in the middle of one.
  const version = Number(await admin.hget(keys.state, 'version'));
  await schema.sql(`UPDATE ${table} SET amount = amount * 2`);
  await until(
    async () => Number(await admin.hget(keys.state, 'version')) > version,
    30_000,
    'the run to start',
  );
  paused.signal('SIGSTOP');
  const stoppedAt = Date.now();

  // Its lease runs out on Redis's clock; the other replica takes it and finishes the change.
  await until(
    async () => {
      const { holder } = await storedLease(prefix, 'events');
      return holder !== null && holder !== before.holder;
    },
    TTL_MS * 3,
    'the other replica to take the lease over',
  );
  const after = await storedLease(prefix, 'events');
  expect(after.token).toBeGreaterThan(before.token);
  await expectEqualToSql(prefix, 'events');
  const held = await settled(other, keys);

  // Woken, the stopped process carries on where it was: whatever it still tries to write is refused.
  paused.signal('SIGCONT');
  await until(async () => (await leaseOf(paused, 'events')).holder === after.holder, 30_000, 'it to notice');
  expect(await leaseOf(paused, 'events')).toMatchObject({ heldHere: false, token: after.token });
  expect(await metric(paused, 'livesync_lease_changes_total', 'dataset="events",change="lost"')).toBe(1);
  expect(await metric(paused, 'livesync_lease_held', 'dataset="events"')).toBe(0);
  expect(await metric(other, 'livesync_lease_held', 'dataset="events"')).toBe(1);
  expect(await committed(keys)).toEqual(held);
  // Runs that began after the stop are the new holder's alone.
  const late = [...(await runsBy(prefix, 'events'))].flatMap(([holder, runs]) =>
    runs.filter((r) => r.startedAt > stoppedAt).map(() => holder),
  );
  expect(late.filter((holder) => holder !== after.holder)).toEqual([]);
  const refusedByRedis = paused.output.includes('a write was refused for its fencing token');
  report(
    `SIGSTOP/SIGCONT: the stopped holder lost the lease (${refusedByRedis ? 'a write refused by Redis for its token' : 'its renewal refused'}); state unchanged by it`,
  );

  // And later changes are synced once, by the new holder: totals still equal SQL.
  await schema.sql(`UPDATE ${table} SET deleted_at = now() WHERE id % 11 = 0 AND deleted_at IS NULL`);
  await expectEqualToSql(prefix, 'events');
}, 240_000);
