/**
 * Operations on a dataset (http/routes/ops.ts): pause, resume and resync from scratch, each
 * carried out by the lease holder (here the only replica) and recorded as annotations.
 */
import { harness, MIN, row, T0, type Harness } from './harness';

let h: Harness;

beforeEach(async () => {
  h = await harness({ upstream: (source) => (source.rows = [row(1, T0, 'US', 1), row(2, T0, 'DE', 2)]) });
  await h.syncNow();
});

afterEach(async () => h.app.close());

const post = (operation: string, dataset = 'events') =>
  h.app.inject({ method: 'POST', url: `/api/datasets/${dataset}/${operation}` });

async function status() {
  return (await h.app.inject({ method: 'GET', url: '/api/datasets/events' })).json().status;
}

async function annotations(kinds: string) {
  const url = `/api/annotations?dataset=events&from=0&to=${Date.now() + MIN}&kinds=${kinds}`;
  return (await h.app.inject({ method: 'GET', url })).json() as { title: string; tags: string[] }[];
}

it('pauses and resumes syncing, and annotates both', async () => {
  const paused = await post('pause');
  expect(paused.statusCode).toBe(202);
  expect(paused.json()).toMatchObject({
    dataset: 'events',
    operation: 'pause',
    by: expect.stringMatching(/^api /),
  });
  expect(paused.json().holder).toBe((await status()).lease.holder);
  await h.syncNow();
  h.source.rows.push(row(3, T0, 'FR', 3, 30));
  await h.syncNow();
  expect(await status()).toMatchObject({ state: 'paused', records: 2, paused: { by: expect.any(String) } });
  expect((await status()).notice).toContain('sync paused by api');
  expect((await annotations('pause')).map((a) => [a.title, a.tags.includes('ongoing')])).toEqual([
    ['events: sync paused by an operator', true],
  ]);

  expect((await post('resume')).statusCode).toBe(202);
  await h.syncNow();
  expect(await status()).toMatchObject({ state: 'idle', records: 3, paused: null });
  // The pause region and the pause itself start at the same time: in either order.
  expect((await annotations('operation,pause')).map((a) => a.title).sort()).toEqual([
    'events: paused by an operator',
    'events: resumed by an operator',
    'events: sync paused by an operator',
  ]);
});

it('resyncs from scratch when asked: a new copy, marked incomplete until caught up, and annotated', async () => {
  const before = await h.store.readState('events');
  h.source.rows.push(row(4, T0 + MIN, 'JP', 4, 40));
  expect((await post('resync')).statusCode).toBe(202);
  await h.syncNow();
  const after = await h.store.readState('events');
  expect(after!.generation).not.toBe(before!.generation);
  expect(after).toMatchObject({ records: 3, resync: null });
  expect(await status()).toMatchObject({ state: 'idle', resyncSince: null });
  expect((await h.store.readControl('events')).resync).toBeNull();
  expect((await annotations('operation,resync')).map((a) => a.title)).toEqual([
    'events: resynced from scratch',
    'events: resync from scratch asked for by an operator',
  ]);
});

it('names an unknown dataset, and is behind the API key like every /api route', async () => {
  expect((await post('pause', 'nope')).statusCode).toBe(404);
  await h.app.close();
  h = await harness({ apiKey: 'secret' });
  expect((await post('pause')).statusCode).toBe(401);
  expect((await post('resync')).statusCode).toBe(401);
  expect((await h.store.readControl('events')).paused).toBeNull();
});
