import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app';
import type { Config } from '../../src/config/load';
import { MemoryStore } from '../../src/store/memory';
import { SyncManager } from '../../src/sync/manager';
import { datasetSpec } from '../helpers';
import { ArraySource } from '../sync/array-source';

const T0 = Date.UTC(2026, 0, 5);
const MIN = 60_000;

describe('POST /api/query', () => {
  let app: FastifyInstance;
  const source = new ArraySource();
  // Distinct counts per minute too, so that one query answers every aggregation per minute.
  const spec = datasetSpec({ distinctFrom: '1m' });

  beforeAll(async () => {
    source.rows = [
      {
        id: '1',
        time: T0 + 10_000,
        cursor: '1',
        deleted: false,
        dims: ['US', 'mobile'],
        metrics: [10, 100],
        distinct: ['a'],
      },
      {
        id: '2',
        time: T0 + 20_000,
        cursor: '2',
        deleted: false,
        dims: ['US', 'desktop'],
        metrics: [30, 300],
        distinct: ['b'],
      },
      {
        id: '3',
        time: T0 + 70_000,
        cursor: '3',
        deleted: false,
        dims: ['DE', 'mobile'],
        metrics: [null, 50],
        distinct: ['a'],
      },
      {
        id: '4',
        time: T0 + 130_000,
        cursor: '4',
        deleted: false,
        dims: ['US', 'mobile'],
        metrics: [5, 10],
        distinct: ['a'],
      },
      {
        id: '5',
        time: T0 + 150_000,
        cursor: '5',
        deleted: false,
        dims: ['US', 'tablet'],
        metrics: [7, 20],
        distinct: ['c'],
      },
    ];
    const config: Config = {
      server: { host: '127.0.0.1', port: 0, apiKey: '', rateLimitPerMinute: 0 },
      redis: null,
      grafanaLive: null,
      datasets: [spec],
      source: 'test',
    };
    const store = new MemoryStore();
    const sync = new SyncManager([spec], () => source, store, pino({ level: 'silent' }));
    app = await buildApp({ config, store, sync, logger: pino({ level: 'silent' }) });
    await app.ready();
    await sync.get('events')!.syncNow();
  });
  afterAll(async () => app.close());

  const query = (body: unknown) => app.inject({ method: 'POST', url: '/api/query', payload: body as object });
  const base = { range: { from: T0, to: T0 + 3 * MIN }, intervalMs: MIN, maxDataPoints: 1000 };
  const count = { ...base, queries: [{ refId: 'A', dataset: 'events', aggregations: ['count'] }] };

  it('returns one time series frame per group with labels and fields named as requested', async () => {
    const res = await query({
      ...base,
      queries: [
        {
          refId: 'A',
          dataset: 'events',
          aggregations: ['count', 'sum(amount)', 'avg(duration_ms)', 'max(amount)', 'distinct(user_id)'],
          groupBy: ['country'],
        },
      ],
    });
    expect(res.statusCode).toBe(200);
    const frames = res.json().results.A.frames;
    expect(frames).toHaveLength(2);
    const [de, us] = frames;
    expect(de.schema.fields.map((f: { name: string }) => f.name)).toEqual([
      'time',
      'count',
      'sum(amount)',
      'avg(duration_ms)',
      'max(amount)',
      'distinct(user_id)',
    ]);
    expect(de.schema.fields[1].labels).toEqual({ country: 'DE' });
    expect(de.data.values).toEqual([[T0 + MIN], [1], [null], [50], [null], [1]]);
    expect(us.data.values).toEqual([
      [T0, T0 + 2 * MIN],
      [2, 2],
      [40, 12],
      [200, 15],
      [30, 7],
      [2, 2],
    ]);
    expect(us.schema.meta.custom).toMatchObject({ stepMs: MIN, lastSyncAt: expect.any(Number) });
  });

  it('filters by dimension values and folds the rest', async () => {
    const res = await query({
      ...base,
      intervalMs: 3 * MIN,
      queries: [
        {
          refId: 'B',
          dataset: 'events',
          aggregations: ['count', 'min(amount)'],
          filters: { device: ['mobile', 'tablet'] },
        },
      ],
    });
    expect(res.json().results.B.frames[0].data.values).toEqual([[T0], [4], [5]]);
  });

  it('returns a long table with the group columns', async () => {
    const res = await query({
      ...base,
      queries: [
        {
          refId: 'C',
          dataset: 'events',
          aggregations: ['count'],
          groupBy: ['country', 'device'],
          format: 'table',
        },
      ],
    });
    const [frame] = res.json().results.C.frames;
    expect(frame.schema.fields.map((f: { name: string }) => f.name)).toEqual([
      'time',
      'country',
      'device',
      'count',
    ]);
    expect(frame.data.values).toEqual([
      [T0, T0, T0 + MIN, T0 + 2 * MIN, T0 + 2 * MIN],
      ['US', 'US', 'DE', 'US', 'US'],
      ['desktop', 'mobile', 'mobile', 'mobile', 'tablet'],
      [1, 1, 1, 1, 1],
    ]);
  });

  it('widens the step to respect maxDataPoints and returns whole buckets', async () => {
    const res = await query({
      range: { from: T0 + 90_000, to: T0 + 150_001 },
      intervalMs: 1000,
      maxDataPoints: 1,
      queries: [{ refId: 'D', dataset: 'events', aggregations: ['count'] }],
    });
    const [frame] = res.json().results.D.frames;
    expect(frame.schema.meta.custom.stepMs).toBe(2 * MIN);
    expect(frame.data.values).toEqual([
      [T0, T0 + 2 * MIN],
      [3, 2],
    ]);
  });

  it.each([
    [
      { ...base, queries: [{ refId: 'A', dataset: 'events', aggregations: ['median(amount)'] }] },
      400,
      'queries[0].aggregations[0]: unknown aggregation "median(amount)"',
    ],
    [
      { ...base, queries: [{ refId: 'A', dataset: 'events', aggregations: ['sum(price)'] }] },
      400,
      'queries[0].aggregations[0]: "price" is not a metric of events',
    ],
    [
      { ...base, queries: [{ refId: 'A', dataset: 'events', aggregations: ['count'], groupBy: ['city'] }] },
      400,
      'queries[0].groupBy: "city" is not a dimension of events',
    ],
    [
      { ...base, queries: [{ refId: 'A', dataset: 'nope', aggregations: ['count'] }] },
      404,
      'queries[0].dataset: unknown dataset "nope"',
    ],
    [
      {
        ...base,
        range: { from: T0, to: T0 },
        queries: [{ refId: 'A', dataset: 'events', aggregations: ['count'] }],
      },
      400,
      'range: from must be before to',
    ],
    [
      { ...base, queries: [{ refId: 'A', dataset: 'events', aggregations: { count: 1 } }] },
      400,
      'body.queries[0].aggregations: must be an array',
    ],
    [
      { ...base, queries: [{ refId: 'A', dataset: 'events', aggregations: ['count'], format: 'csv' }] },
      400,
      'body.queries[0].format: must be one of timeseries, table',
    ],
    [
      { ...base, queries: [{ refId: 'A', dataset: 'events', aggregations: ['count'], kind: 'logs' }] },
      400,
      'body.queries[0].kind: must be one of metrics, freshness, status',
    ],
    // Numbers in a JSON body are numbers: text that merely reads as one, finite or not, is refused.
    [{ ...count, range: { from: T0, to: 'Infinity' } }, 400, 'body.range.to: must be an integer'],
    [{ ...count, intervalMs: 'Infinity' }, 400, 'body.intervalMs: must be an integer'],
    [{ ...count, intervalMs: '-Infinity' }, 400, 'body.intervalMs: must be an integer'],
    [{ ...count, maxDataPoints: 'NaN' }, 400, 'body.maxDataPoints: must be an integer'],
    [{ ...count, intervalMs: '60000' }, 400, 'body.intervalMs: must be an integer'],
    [
      { ...base, queries: [{ refId: 'A', dataset: 'events', aggregations: ['count'], colour: 1 }] },
      400,
      'body.queries[0]: unknown field "colour"',
    ],
    [{ ...base, queries: [] }, 400, 'body.queries: must NOT have fewer than 1 items'],
  ])('rejects %j with %i naming the problem', async (body, status, message) => {
    const res = await query(body);
    expect(res.statusCode).toBe(status);
    expect(res.json().message).toContain(message);
    expect(res.body).not.toMatch(/at .*\.ts:\d+/);
  });

  it('refuses a JSON number too large to be finite, naming the field', async () => {
    for (const [field, text] of [
      ['range.to', `{"from": ${T0}, "to": 1e400}`],
      ['range.from', `{"from": -1e400, "to": ${T0}}`],
    ]) {
      const res = await app.inject({
        method: 'POST',
        url: '/api/query',
        headers: { 'content-type': 'application/json' },
        payload: `{"range": ${text}, "queries": [{"refId": "A", "dataset": "events", "aggregations": ["count"]}]}`,
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().message).toBe(`body.${field}: must be an integer`);
    }
  });

  it('reports a bad query on its own refId and answers the others', async () => {
    const res = await query({
      ...base,
      queries: [
        { refId: 'ok', dataset: 'events', aggregations: ['count'] },
        { refId: 'bad', dataset: 'events', aggregations: ['sum(nope)'] },
      ],
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().results.ok.frames[0].data.values[1]).toEqual([2, 1, 2]);
    expect(res.json().results.bad).toEqual({
      error: expect.stringContaining('"nope" is not a metric'),
      status: 400,
    });
  });

  it('answers unknown routes and malformed JSON with 4xx, never a stack', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/nowhere' })).statusCode).toBe(404);
    const res = await app.inject({
      method: 'POST',
      url: '/api/query',
      payload: '{bad',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.body).not.toContain('at ');
  });
});
