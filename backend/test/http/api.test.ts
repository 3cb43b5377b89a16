import { harness, MIN, row, T0, type Harness } from './harness';

describe('datasets, values, annotations, manual sync', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
    h.source.rows = [
      row(1, T0, 'US', 1),
      row(2, T0, 'DE', 2),
      row(3, T0, 'Deutschland', 3),
      row(4, T0, 'FR', 4),
    ];
    await h.syncNow();
    h.source.failWith = { message: 'upstream said 503', class: 'transient' };
    await h.syncNow();
    h.source.failWith = null;
  });
  afterAll(async () => h.app.close());

  it('lists datasets with their config and status', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/datasets' });
    expect(res.statusCode).toBe(200);
    const [events] = res.json().datasets;
    expect(events).toMatchObject({
      name: 'events',
      source: { kind: 'demo' },
      dimensions: ['country', 'device'],
      metrics: ['amount', 'duration_ms'],
      distinct: ['user_id'],
      resolution: '1m',
      staleAfter: '2m',
      status: {
        state: 'backoff',
        records: 4,
        lastError: { message: 'upstream said 503', class: 'transient' },
      },
    });
    expect((await h.app.inject({ method: 'GET', url: '/api/datasets/events' })).json().name).toBe('events');
    const missing = await h.app.inject({ method: 'GET', url: '/api/datasets/nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().message).toContain('unknown dataset "nope"');
  });

  it('lists known values of a dimension, filtered and limited', async () => {
    const all = await h.app.inject({ method: 'GET', url: '/api/datasets/events/values/country' });
    expect(all.json()).toEqual({ values: ['DE', 'Deutschland', 'FR', 'US'] });
    const some = await h.app.inject({
      method: 'GET',
      url: '/api/datasets/events/values/country?q=de&limit=1',
    });
    expect(some.json()).toEqual({ values: ['DE'] });
    expect((await h.app.inject({ method: 'GET', url: '/api/datasets/events/values/city' })).statusCode).toBe(
      404,
    );
    expect(
      (await h.app.inject({ method: 'GET', url: '/api/datasets/events/values/country?limit=0' })).statusCode,
    ).toBe(400);
  });

  it('annotates state changes as regions, never routine runs; big batches only when asked', async () => {
    const to = Date.now() + MIN;
    h.clock.now = Date.now();
    const get = (query: string) =>
      h.app.inject({ method: 'GET', url: `/api/annotations?dataset=events&from=0&to=${to}${query}` });
    const res = await get('');
    expect(res.statusCode).toBe(200);
    // The successful run of 4 records is not an annotation; the failure under way is one region.
    expect(res.json()).toHaveLength(1);
    const [failing] = res.json();
    expect(failing).toMatchObject({
      title: 'events: sync failing',
      tags: ['sync', 'failure', 'events', 'ongoing'],
    });
    expect(failing.text).toMatch(
      /^1 failed run over \d+ s; last error \(upstream, transient\): upstream said 503$/,
    );
    expect(failing.timeEnd).toBeGreaterThanOrEqual(failing.time);

    const batches = (await get('&minRecords=4')).json();
    expect(batches.map((a: { tags: string[] }) => a.tags[1])).toEqual(['failure', 'batch']);
    expect(batches[1]).toMatchObject({
      title: 'events: 4 records synced',
      tags: ['sync', 'batch', 'events'],
    });
    expect(batches[1].time).toBe(batches[1].timeEnd);
    expect((await get('&minRecords=5')).json()).toHaveLength(1);
    expect((await get('&kinds=resync,pause')).json()).toEqual([]);

    const wrongKind = await get('&kinds=failure,nope');
    expect(wrongKind.statusCode).toBe(400);
    expect(wrongKind.json().message).toBe(
      'kinds: "nope" is not a kind of annotation; use failure, resync, pause, reconcile',
    );
    const bad = await h.app.inject({ method: 'GET', url: '/api/annotations?from=10&to=5' });
    expect(bad.statusCode).toBe(400);
    expect(
      (await h.app.inject({ method: 'GET', url: '/api/annotations?from=x&to=5' })).json().message,
    ).toContain('querystring.from');
  });

  it('answers HEAD on the event stream with its headers and ends it', async () => {
    // inject resolves only once the response has ended: a stream left open would hang here.
    const res = await h.app.inject({ method: 'HEAD', url: '/api/datasets/events/events' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(res.body).toBe('');
    await expect(h.app.metrics.sseClients.get()).resolves.toMatchObject({ values: [{ value: 0 }] });
  });

  it('syncs on demand and refuses to be hammered', async () => {
    h.source.rows.push(row(5, T0, 'JP', 5, 50));
    const res = await h.app.inject({ method: 'POST', url: '/api/datasets/events/sync' });
    expect(res.statusCode).toBe(200);
    expect(res.json().status).toMatchObject({ state: 'idle', records: 5 });
    // The recovery closed the failure: one region from the first failed run to the recovery.
    h.clock.now = Date.now();
    const [recovered] = (
      await h.app.inject({ method: 'GET', url: `/api/annotations?from=0&to=${Date.now() + MIN}` })
    ).json();
    expect(recovered).toMatchObject({
      title: 'events: sync failed, then recovered',
      tags: ['sync', 'failure', 'events'],
    });
    const again = await h.app.inject({ method: 'POST', url: '/api/datasets/events/sync' });
    expect(again.statusCode).toBe(429);
    expect(again.headers['retry-after']).toBeDefined();
  });
});

describe('health and metrics', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness({
      upstream: (source) => {
        source.rows = [row(1, T0, 'US', 1)];
        source.failWith = { message: 'relation "events" does not exist', class: 'permanent' };
      },
    });
  });
  afterEach(async () => h.app.close());

  it('is degraded until the first sync, ok after, degraded again once stale', async () => {
    await h.syncNow();
    const before = await h.app.inject({ method: 'GET', url: '/api/health' });
    expect(before.statusCode).toBe(200);
    expect(before.json()).toMatchObject({
      status: 'degraded',
      checks: {
        store: {
          kind: 'memory',
          status: 'ok',
          message:
            'the embedded in-memory store: its data is lost when the service restarts, then synced again',
        },
        datasets: { events: { status: 'failing', ageSeconds: null } },
      },
    });
    expect(before.json().checks.datasets.events.message).toBe(
      'events: not synced yet; threshold 2 min; last error: relation "events" does not exist',
    );
    h.source.failWith = null;
    await h.syncNow();
    h.clock.now = h.sync.get('events')!.status().lastSuccessAt! + 1_000;
    expect((await h.app.inject({ method: 'GET', url: '/api/health' })).json()).toMatchObject({
      status: 'ok',
      checks: { datasets: { events: { status: 'ok', ageSeconds: 1 } } },
    });
    h.clock.now += 10 * MIN;
    const stale = (await h.app.inject({ method: 'GET', url: '/api/health' })).json();
    expect(stale).toMatchObject({
      status: 'degraded',
      checks: { datasets: { events: { status: 'stale' } } },
    });
    expect(stale.checks.datasets.events.message).toContain('last synced 10 min ago');
    expect((await h.app.inject({ method: 'GET', url: '/api/health/live' })).json()).toEqual({ status: 'ok' });
  });

  it('exports every contract metric, with route templates rather than raw URLs', async () => {
    h.source.failWith = null;
    await h.syncNow();
    await h.app.inject({ method: 'GET', url: '/api/datasets/events' });
    await h.app.inject({
      method: 'POST',
      url: '/api/query',
      headers: { 'x-dashboard-uid': 'dash-1' },
      payload: {
        range: { from: T0, to: T0 + MIN },
        queries: [{ refId: 'A', dataset: 'events', aggregations: ['count'] }],
      },
    });
    const res = await h.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.headers['content-type']).toContain('text/plain');
    for (const name of [
      'livesync_sync_runs_total{dataset="events",outcome="success"}',
      'livesync_sync_records_total{dataset="events",op="upsert"} 1',
      'livesync_sync_duration_seconds_bucket{le="0.005",dataset="events"}',
      'livesync_dataset_last_success_timestamp_seconds{dataset="events"}',
      'livesync_dataset_age_seconds{dataset="events"}',
      'livesync_dataset_stale_threshold_seconds{dataset="events"} 120',
      'livesync_http_requests_total{route="/api/datasets/:name",method="GET",status="200"} 1',
      'livesync_http_request_duration_seconds_count{route="/api/query",method="POST"} 1',
      'livesync_queries_total{dataset="events",kind="metrics"} 1',
      'livesync_dashboard_queries_total{dashboard="dash-1"} 1',
      '# TYPE livesync_upstream_errors_total counter',
      '# TYPE livesync_cache_requests_total counter',
      'livesync_process_cpu_seconds_total',
    ]) {
      expect(res.body).toContain(name);
    }
    expect(res.body).not.toContain('/api/datasets/events"');
  });

  it('folds dashboards past the cap into "other"', async () => {
    for (let i = 0; i < 105; i++) h.app.metrics.dashboardLabel(`d${i}`);
    expect(h.app.metrics.dashboardLabel('d3')).toBe('d3');
    expect(h.app.metrics.dashboardLabel('new-one')).toBe('other');
    expect(h.app.metrics.dashboardLabel('bad uid with spaces')).toBe('other');
  });

  it('counts upstream errors by class', async () => {
    h.source.failWith = { message: 'password authentication failed', class: 'permanent' };
    await h.syncNow();
    await h.syncNow();
    const text = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/livesync_upstream_errors_total\{dataset="events",class="permanent"\} [2-9]/);
    expect(text).toMatch(/livesync_sync_runs_total\{dataset="events",outcome="failure"\} [2-9]/);
  });
});

describe('API key and rate limit', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ apiKey: 's3cret-key', rateLimitPerMinute: 8 });
  });
  afterAll(async () => h.app.close());

  it('requires the key on /api/* except liveness', async () => {
    const none = await h.app.inject({ method: 'GET', url: '/api/datasets' });
    expect(none.statusCode).toBe(401);
    expect(none.json().message).toContain('an API key is required');
    const wrong = await h.app.inject({
      method: 'GET',
      url: '/api/datasets',
      headers: { authorization: 'Bearer nope' },
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().message).toBe('the API key is wrong');
    const right = await h.app.inject({
      method: 'GET',
      url: '/api/datasets',
      headers: { authorization: 'Bearer s3cret-key' },
    });
    expect(right.statusCode).toBe(200);
    expect((await h.app.inject({ method: 'GET', url: '/api/health/live' })).statusCode).toBe(200);
    expect((await h.app.inject({ method: 'GET', url: '/api/health' })).statusCode).toBe(401);
  });

  it('limits the request rate per client', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      statuses.push(
        (
          await h.app.inject({
            method: 'GET',
            url: '/api/health',
            headers: { authorization: 'Bearer s3cret-key' },
          })
        ).statusCode,
      );
    }
    expect(statuses).toContain(429);
    expect((await h.app.inject({ method: 'GET', url: '/api/health/live' })).statusCode).toBe(200);
  });
});
