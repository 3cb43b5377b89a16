/**
 * Issue 2, Redis going away under the running service: queries answer 503 with a message,
 * fast; health says down while liveness stays up; when Redis is back the service recovers
 * on its own and the sync engine refills the (empty) store.
 */
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app';
import type { DatasetSpec } from '../../src/config/dataset';
import type { Config } from '../../src/config/load';
import { createSource } from '../../src/sources';
import { RedisStore } from '../../src/store/redis';
import { SyncManager } from '../../src/sync/manager';
import type { SyncStateName } from '../../src/sync/status';
import { uniquePrefix } from '../helpers';
import { COUNTRY_SQL, DAY, DEVICE_SQL, eventsSpec, PgSchema, silent, ThrowawayRedis, until } from './support';

const T0 = Date.UTC(2026, 0, 5);
const schema = new PgSchema();
const server = new ThrowawayRedis();
let app: FastifyInstance;
let sync: SyncManager;
let spec: DatasetSpec;
let table: string;

const query = (headers: Record<string, string> = {}) =>
  app.inject({
    method: 'POST',
    url: '/api/query',
    headers,
    payload: {
      range: { from: T0 - DAY, to: T0 + 3 * DAY },
      intervalMs: DAY,
      maxDataPoints: 100,
      queries: [{ refId: 'A', dataset: 'events', aggregations: ['count'] }],
    },
  });

/** The total count LiveSync answers, summed over the frame's buckets. */
function total(body: string): number {
  const frame = (JSON.parse(body) as { results: { A: { frames: { data: { values: number[][] } }[] } } })
    .results.A.frames[0]!;
  return (frame.data.values[1] ?? []).reduce((a, b) => a + b, 0);
}

async function sqlTotal(): Promise<number> {
  const [row] = await schema.sql<{ n: string }>(
    `SELECT count(*)::text AS n FROM ${table} WHERE deleted_at IS NULL`,
  );
  return Number(row!.n);
}

beforeAll(async () => {
  await schema.create();
  table = await schema.createEvents();
  await schema.sql(
    `INSERT INTO ${table} (ts, country, device, amount, duration_ms, user_id)
     SELECT to_timestamp(${T0 / 1000}) + random() * interval '2 days', ${COUNTRY_SQL}, ${DEVICE_SQL},
            round((random() * 100)::numeric, 2), 1, 'u' || i
     FROM generate_series(1, 5000) i`,
  );
  await server.start();
  const prefix = uniquePrefix();
  const store = await RedisStore.connect(server.url, prefix);
  spec = eventsSpec(table);
  const config: Config = {
    server: { host: '127.0.0.1', port: 0, apiKey: '', rateLimitPerMinute: 0 },
    redis: { url: server.url, prefix },
    grafanaLive: null,
    datasets: [spec],
    source: 'test',
  };
  sync = new SyncManager([spec], createSource, store, silent, {
    backoff: { initialMs: 20, maxMs: 200 },
    breaker: { threshold: 5, halfOpenAfterMs: 300 },
  });
  app = await buildApp({ config, store, sync, logger: silent });
  await app.ready();
  await sync.get('events')!.syncNow();
});

afterAll(async () => {
  await app?.close();
  await server.stop();
  await schema.drop();
});

/**
 * Settles `answer` with every timer stopped: setTimeout and setInterval are jest's fake ones and
 * never advanced, so an answer that comes at all waited on no timeout, retry or reconnect. Fast
 * is counted, not timed: the answer must come within a bounded number of event-loop turns.
 */
async function withoutWaitingOnTime<T>(answer: () => Promise<T>): Promise<T> {
  let settled = false;
  const result = answer().finally(() => {
    settled = true;
  });
  for (let turn = 0; turn < 1_000 && !settled; turn++) await new Promise((resolve) => setImmediate(resolve));
  if (!settled)
    throw new Error('no answer with the clock stopped: it waits on a timer (a timeout or a retry)');
  return result;
}

it('answers 503 at once while Redis is down, says so in health, and recovers when it is back', async () => {
  const up = await query({ 'x-cache-skip': 'true' });
  expect(up.statusCode).toBe(200);
  expect(total(up.body)).toBe(await sqlTotal());

  await server.stop();
  // The client has noticed once health reports the store's own error (naming Redis), not its ping timeout.
  await until(
    async () =>
      /is not reachable: (?!no answer within)/.test(
        (await app.inject({ method: 'GET', url: '/api/health' })).json<{
          checks: { store: { message?: string } };
        }>().checks.store.message ?? '',
      ),
    15_000,
    'health to see Redis down',
  );

  jest.useFakeTimers({
    doNotFake: [
      'Date',
      'hrtime',
      'nextTick',
      'performance',
      'queueMicrotask',
      'requestAnimationFrame',
      'cancelAnimationFrame',
      'requestIdleCallback',
      'cancelIdleCallback',
      'setImmediate',
      'clearImmediate',
    ],
  });
  try {
    // The check itself: an answer that waits on a timer never comes while the clock is stopped.
    await expect(
      withoutWaitingOnTime(() => new Promise((resolve) => setTimeout(resolve, 1))),
    ).rejects.toThrow('no answer with the clock stopped');
    const variants: Record<string, string>[] = [{ 'x-cache-skip': 'true' }, {}];
    for (const headers of variants) {
      const down = await withoutWaitingOnTime(() => query(headers));
      expect(down.statusCode).toBe(503);
      expect(down.json()).toMatchObject({
        error: 'Service Unavailable',
        message: expect.stringMatching(/Redis/),
      });
      expect(down.headers['retry-after']).toBeDefined();
    }

    const health = await withoutWaitingOnTime(() => app.inject({ method: 'GET', url: '/api/health' }));
    expect(health.statusCode).toBe(503);
    expect(health.json()).toMatchObject({
      status: 'down',
      checks: {
        store: {
          kind: 'redis',
          status: 'down',
          url: server.url,
          message: expect.stringMatching(/^Redis at redis:\/\/127\.0\.0\.1:\d+ is not reachable: /),
        },
      },
    });
    // Freshness is the service's own knowledge: it still answers, and says the last sync is getting old.
    const freshness = await withoutWaitingOnTime(() =>
      app.inject({
        method: 'POST',
        url: '/api/query',
        payload: { range: { from: T0, to: T0 + DAY }, queries: [{ refId: 'F', kind: 'freshness' }] },
      }),
    );
    expect(freshness.statusCode).toBe(200);
    expect(freshness.json().results.F.frames[0].data.values[0]).toEqual(['events']);
    const live = await withoutWaitingOnTime(() => app.inject({ method: 'GET', url: '/api/health/live' }));
    expect(live.statusCode).toBe(200);
  } finally {
    // What was scheduled meanwhile (the client's next reconnect) runs now, then time is real again.
    jest.runOnlyPendingTimers();
    jest.useRealTimers();
  }

  // Back on the same port, empty (no persistence): queries answer again once reconnected...
  const states: SyncStateName[] = [];
  sync.get('events')!.on('status', (s) => states.push(s.state));
  await server.start();
  await until(async () => (await query({ 'x-cache-skip': 'true' })).statusCode === 200, 15_000, 'a 200');
  expect((await app.inject({ method: 'GET', url: '/api/health' })).statusCode).toBe(200);

  // ...and the next sync notices the store lost the dataset and fills it again.
  await sync.get('events')!.syncNow();
  expect(states).toContain('resyncing');
  expect(sync.get('events')!.status().state).toBe('idle');
  const again = await query({ 'x-cache-skip': 'true' });
  expect(again.statusCode).toBe(200);
  expect(total(again.body)).toBe(await sqlTotal());
});
