import { MemoryStore } from '../../src/store/memory';
import type { Store } from '../../src/store/types';
import { harness, MIN, row, T0, type Harness } from './harness';

const query = (h: Harness, body: object, headers: Record<string, string> = {}) =>
  h.app.inject({ method: 'POST', url: '/api/query', payload: body, headers });

const metricsBody = (from = T0, to = T0 + 10 * MIN) => ({
  range: { from, to },
  intervalMs: MIN,
  maxDataPoints: 1000,
  queries: [{ refId: 'A', dataset: 'events', aggregations: ['count', 'sum(amount)'], groupBy: ['country'] }],
});

describe('response cache and HTTP validators', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
    h.source.rows = [
      row(1, T0 + 5_000, 'US', 10),
      row(2, T0 + 65_000, 'DE', 20),
      row(3, T0 + 3 * MIN, 'US', 5),
    ];
    await h.syncNow();
  });
  afterEach(async () => h.app.close());

  it('misses, then hits, and never lets a browser reuse an answer without asking', async () => {
    const first = await query(h, metricsBody());
    expect(first.statusCode).toBe(200);
    expect(first.headers).toMatchObject({ 'x-cache': 'MISS', 'cache-control': 'private, no-cache' });
    expect(first.headers.etag).toMatch(/^"[\w-]+"$/);
    const second = await query(h, metricsBody());
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.headers.etag).toBe(first.headers.etag);
    expect(second.json()).toEqual(first.json());
  });

  it('answers 304 with no body when the validator still matches', async () => {
    const first = await query(h, metricsBody());
    const again = await query(h, metricsBody(), { 'if-none-match': first.headers.etag as string });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
  });

  it('bypasses the cache for X-Cache-Skip and Cache-Control: no-cache', async () => {
    await query(h, metricsBody());
    for (const headers of [{ 'x-cache-skip': 'true' }, { 'cache-control': 'no-cache' }] as Record<
      string,
      string
    >[]) {
      const res = await query(h, metricsBody(), headers);
      expect(res.headers['x-cache']).toBe('BYPASS');
      expect(res.statusCode).toBe(200);
    }
    const etag = (await query(h, metricsBody())).headers.etag as string;
    const forced = await query(h, metricsBody(), { 'if-none-match': etag, 'cache-control': 'no-cache' });
    expect(forced.statusCode).toBe(200);
  });

  it('keeps entries whose range a sync did not touch, and drops those it did', async () => {
    const inside = metricsBody(T0, T0 + 10 * MIN);
    const outside = metricsBody(T0 + 2 * 86_400_000, T0 + 2 * 86_400_000 + 10 * MIN);
    const before = await query(h, inside);
    await query(h, outside);
    // A change three hours after both ranges' blocks: neither answer changes.
    h.source.rows.push(row(4, T0 + 3 * 3_600_000, 'US', 1, 10));
    await h.syncNow();
    const stillValid = await query(h, inside, { 'if-none-match': before.headers.etag as string });
    expect(stillValid.statusCode).toBe(304);
    expect((await query(h, inside)).headers['x-cache']).toBe('HIT');
    // A change inside the first range invalidates it, and only it.
    h.source.rows.push(row(5, T0 + 4 * MIN, 'US', 100, 11));
    await h.syncNow();
    const changed = await query(h, inside, { 'if-none-match': before.headers.etag as string });
    expect(changed.statusCode).toBe(200);
    expect(changed.headers['x-cache']).toBe('MISS');
    const us = changed
      .json()
      .results.A.frames.find((f: { schema: { fields: { labels?: object }[] } }) =>
        JSON.stringify(f.schema.fields[1]!.labels).includes('US'),
      );
    expect(us.data.values[0]).toEqual([T0, T0 + 3 * MIN, T0 + 4 * MIN]);
    expect(us.data.values[2]).toEqual([10, 5, 100]);
    expect((await query(h, outside)).headers['x-cache']).toBe('HIT');
  });

  it('shares entries between refreshes whose range aligns to the same steps', async () => {
    await query(h, metricsBody(T0 + 1_000, T0 + 10 * MIN + 1_000));
    const res = await query(h, metricsBody(T0 + 30_000, T0 + 10 * MIN + 30_000));
    expect(res.headers['x-cache']).toBe('HIT');
  });

  it('computes identical concurrent misses once', async () => {
    let reads = 0;
    const original = h.store.readRollups.bind(h.store);
    (h.store as Store).readRollups = async (...args) => {
      reads++;
      return original(...args);
    };
    const answers = await Promise.all(Array.from({ length: 12 }, () => query(h, metricsBody())));
    expect(answers.every((a) => a.statusCode === 200)).toBe(true);
    expect(new Set(answers.map((a) => a.body)).size).toBe(1);
    expect(reads).toBe(1);
  });

  it('counts cache results per layer in the metrics', async () => {
    const first = await query(h, metricsBody());
    await query(h, metricsBody());
    await query(h, metricsBody(), { 'if-none-match': first.headers.etag as string });
    await query(h, metricsBody(), { 'x-cache-skip': 'true' });
    const text = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toContain('livesync_cache_requests_total{layer="response",result="miss"} 1');
    expect(text).toContain('livesync_cache_requests_total{layer="response",result="hit"} 1');
    expect(text).toContain('livesync_cache_requests_total{layer="response",result="bypass"} 1');
    expect(text).toContain('livesync_cache_requests_total{layer="http",result="not_modified"} 1');
  });
});

describe('freshness on every answer', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
    h.source.rows = [row(1, T0 + 5_000, 'US', 10)];
  });
  afterEach(async () => h.app.close());

  it('carries lastSyncAt, age and state in frame meta, and warns once the data is older than staleAfter', async () => {
    await h.syncNow();
    const synced = h.sync.get('events')!.status().lastSuccessAt!;
    h.clock.now = synced + 30_000;
    const fresh = (await query(h, metricsBody())).json().results.A.frames[0].schema.meta;
    expect(fresh.custom).toMatchObject({ lastSyncAt: synced, ageSeconds: 30, state: 'idle', stepMs: MIN });
    expect(fresh.notices).toBeUndefined();
    h.clock.now = synced + 7 * MIN;
    const res = await query(h, metricsBody());
    expect(res.headers['x-cache']).toBe('HIT');
    const stale = res.json().results.A.frames[0].schema.meta;
    expect(stale.notices).toEqual([
      { severity: 'warning', text: 'events: last synced 7 min ago; threshold 2 min' },
    ]);
  });

  it('keeps answering from synced data while the upstream fails, naming the error', async () => {
    await h.syncNow();
    // Source errors name their dataset; the notice names it once.
    h.source.failWith = { message: 'events: connect ECONNREFUSED 10.0.0.5:5432', class: 'transient' };
    await h.syncNow();
    h.clock.now = Date.now() + 5 * MIN;
    const res = await query(h, metricsBody());
    expect(res.statusCode).toBe(200);
    const frame = res.json().results.A.frames[0];
    expect(frame.data.values[1]).toEqual([1]);
    expect(frame.schema.meta.notices[0].text).toMatch(
      /^events: last synced \d+ min ago; threshold 2 min; last error: connect ECONNREFUSED/,
    );
  });

  it('answers a freshness query with numbers a stat panel can threshold', async () => {
    await h.syncNow();
    const synced = h.sync.get('events')!.status().lastSuccessAt!;
    h.clock.now = synced + 90_000;
    const res = await query(h, { ...metricsBody(), queries: [{ refId: 'F', kind: 'freshness' }] });
    const [frame] = res.json().results.F.frames;
    expect(frame.schema.fields.map((f: { name: string; type: string }) => `${f.name}:${f.type}`)).toEqual([
      'dataset:string',
      'last_updated:time',
      'age_seconds:number',
      'state:string',
      'stale:boolean',
      'incomplete:boolean',
      'records:number',
    ]);
    expect(frame.data.values).toEqual([['events'], [synced], [90], ['idle'], [false], [false], [1]]);
  });

  it('notices a lost store when answering: every answer says incomplete until the resync catches up', async () => {
    await h.syncNow();
    h.clock.now = Date.now();
    // The upstream is away: the resync cannot finish, and answers must say so all along.
    h.source.failWith = { message: 'connect ECONNREFUSED 10.0.0.5:5432', class: 'transient' };
    (h.store as MemoryStore).forget('events');
    const incomplete = 'events: resyncing from the start after the store lost its data';
    const res = await query(h, {
      ...metricsBody(),
      queries: [...metricsBody().queries, { refId: 'F', kind: 'freshness' }, { refId: 'S', kind: 'status' }],
    });
    const meta = res.json().results.A.frames[0].schema.meta;
    expect(meta.custom).toMatchObject({ incomplete: true, state: 'resyncing' });
    expect(meta.notices[0].text).toContain(incomplete);
    const freshness = res.json().results.F.frames[0];
    expect(freshness.schema.meta.notices[0].text).toContain(incomplete);
    expect(freshness.data.values[5]).toEqual([true]);
    const health = (await h.app.inject({ method: 'GET', url: '/api/health' })).json();
    expect(health).toMatchObject({
      status: 'degraded',
      checks: { datasets: { events: { status: 'resyncing' } } },
    });

    // The resync's runs fail: still incomplete, whatever state the runs report.
    await h.syncNow();
    expect(h.sync.get('events')!.status().state).toBe('backoff');
    const failed = (await query(h, metricsBody())).json().results.A.frames[0].schema.meta;
    expect(failed.custom).toMatchObject({ incomplete: true, state: 'backoff' });
    expect(failed.notices[0].text).toMatch(
      new RegExp(`^${incomplete}.*; last error: connect ECONNREFUSED 10.0.0.5:5432$`),
    );

    h.source.failWith = null;
    await h.syncNow();
    const whole = (await query(h, metricsBody())).json().results.A.frames[0];
    expect(whole.schema.meta.custom).toMatchObject({ incomplete: false, state: 'idle' });
    expect(whole.schema.meta.notices).toBeUndefined();
    expect(whole.data.values[1]).toEqual([1]);
  });

  it('answers a status query with a table of datasets', async () => {
    await h.syncNow();
    const res = await query(h, {
      ...metricsBody(),
      queries: [{ refId: 'S', kind: 'status', dataset: 'events' }],
    });
    const [frame] = res.json().results.S.frames;
    const column = (name: string) =>
      frame.data.values[frame.schema.fields.findIndex((f: { name: string }) => f.name === name)];
    expect(column('dataset')).toEqual(['events']);
    expect(column('state')).toEqual(['idle']);
    expect(column('records')).toEqual([1]);
  });
});
