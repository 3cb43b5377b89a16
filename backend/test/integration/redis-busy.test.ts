/**
 * Redis busy with a long script (another client's, or one of ours) answers every other
 * client `BUSY`: requests must say 503 with Retry-After, not 500, and a sync run that meets it
 * is a store failure, never an upstream one, in status, events and metrics.
 */
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/store/redis';
import { harness, row, T0, MIN, type Harness } from '../http/harness';
import { uniquePrefix } from '../helpers';
import { ThrowawayRedis, until } from './support';

const server = new ThrowawayRedis();
let h: Harness;
let admin: Redis;

beforeAll(async () => {
  await server.start();
  admin = new Redis(server.url);
  // This server is the test's own: a short threshold makes a busy script show quickly.
  await admin.config('SET', 'busy-reply-threshold', '20');
  h = await harness({ store: await RedisStore.connect(server.url, uniquePrefix()) });
  h.source.rows = [row(1, T0, 'US', 5), row(2, T0 + MIN, 'DE', 7)];
  await h.syncNow();
});

afterAll(async () => {
  await h?.app.close();
  admin?.disconnect();
  await server.stop();
});

async function metric(name: string, labels: string): Promise<number> {
  const text = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}

it('answers 503 with Retry-After while a script keeps Redis busy, and counts the sync failure as the store’s', async () => {
  const body = {
    range: { from: T0, to: T0 + 10 * MIN },
    intervalMs: MIN,
    maxDataPoints: 100,
    queries: [{ refId: 'A', dataset: 'events', aggregations: ['count'] }],
  };
  const headers = { 'x-cache-skip': 'true' };
  expect((await h.app.inject({ method: 'POST', url: '/api/query', headers, payload: body })).statusCode).toBe(
    200,
  );

  // A read-only endless script on its own connection: SCRIPT KILL can stop it.
  const blocker = new Redis(server.url);
  const blocked = blocker.eval('while true do end', 0).catch((err: Error) => err);
  const probe = new Redis(server.url, { maxRetriesPerRequest: 0 });
  await until(
    async () => (await probe.ping().catch((err: Error) => err.message)).startsWith('BUSY'),
    10_000,
    'Redis to answer BUSY',
  );

  try {
    const res = await h.app.inject({ method: 'POST', url: '/api/query', headers, payload: body });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.json()).toEqual({
      error: 'Service Unavailable',
      message: 'the data store (Redis) cannot answer right now; try again shortly',
    });
    expect(await metric('livesync_request_errors_total', 'origin="store"')).toBe(1);

    const upstreamBefore = await metric('livesync_upstream_errors_total', 'dataset="events"');
    await h.syncNow();
    const status = h.sync.get('events')!.status();
    expect(status.lastError).toMatchObject({ origin: 'store', class: 'transient' });
    expect(status.lastError!.message).toMatch(/^Redis cannot serve now: BUSY/);
    expect(await metric('livesync_sync_errors_total', 'origin="store"')).toBe(1);
    expect(await metric('livesync_upstream_errors_total', 'dataset="events"')).toBe(upstreamBefore);
  } finally {
    await admin.script('KILL');
    expect(String(await blocked)).toMatch(/killed/i);
    blocker.disconnect();
    probe.disconnect();
  }

  // The script gone, the service answers again and the next run succeeds.
  await until(
    async () =>
      (await h.app.inject({ method: 'POST', url: '/api/query', headers, payload: body })).statusCode === 200,
    10_000,
    'a 200 after the script was killed',
  );
  await h.syncNow();
  expect(h.sync.get('events')!.status().state).toBe('idle');
  const events = await h.app.inject({ method: 'GET', url: `/api/annotations?from=0&to=${Date.now() + 1e9}` });
  expect(events.json().map((a: { text: string }) => a.text)).toContainEqual(
    expect.stringMatching(/last error \(store, transient\): Redis cannot serve now: BUSY/),
  );
});
