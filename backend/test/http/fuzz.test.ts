import fc from 'fast-check';
import { harness, MIN, row, T0, type Harness } from './harness';

const VALID = {
  range: { from: T0, to: T0 + 10 * MIN },
  intervalMs: MIN,
  maxDataPoints: 100,
  queries: [
    {
      refId: 'A',
      dataset: 'events',
      aggregations: ['count', 'sum(amount)'],
      groupBy: ['country'],
      filters: { device: ['mobile'] },
      format: 'timeseries',
    },
  ],
};

const PATHS = [
  ['range'],
  ['range', 'from'],
  ['range', 'to'],
  ['intervalMs'],
  ['maxDataPoints'],
  ['queries'],
  ['queries', 0],
  ['queries', 0, 'refId'],
  ['queries', 0, 'kind'],
  ['queries', 0, 'dataset'],
  ['queries', 0, 'aggregations'],
  ['queries', 0, 'aggregations', 0],
  ['queries', 0, 'groupBy'],
  ['queries', 0, 'groupBy', 0],
  ['queries', 0, 'filters'],
  ['queries', 0, 'filters', 'device'],
  ['queries', 0, 'filters', 'device', 0],
  ['queries', 0, 'format'],
] as const;

const nasty = fc.oneof(
  fc.jsonValue(),
  fc.string({ maxLength: 400 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(
    null,
    -1,
    0,
    2 ** 53,
    8.64e15,
    1e308,
    '',
    'count',
    'sum(',
    'avg(amount))',
    'distinct(user_id)',
    'min(duration_ms)',
    'metrics',
    'freshness',
    'status',
    'table',
    '$country',
    '{US,DE}',
    '(US|DE)',
    '__proto__',
    'constructor',
    'x'.repeat(5000),
    [],
    {},
    ['country', 'country'],
  ),
);

function mutate(body: unknown, path: readonly (string | number)[], value: unknown, remove: boolean): unknown {
  const copy = structuredClone(body) as Record<string | number, unknown>;
  let node: Record<string | number, unknown> = copy;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) return copy;
    node = node[key] as Record<string | number, unknown>;
  }
  const last = path[path.length - 1]!;
  if (remove) delete node[last];
  else node[last] = value;
  return copy;
}

const badBody = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.constantFrom(...PATHS), nasty, fc.boolean())
      .map(([p, v, r]) => mutate(VALID, p, v, r)),
  },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.tuple(fc.constantFrom(...PATHS), nasty, fc.boolean()), { minLength: 2, maxLength: 5 })
      .map((ms) => ms.reduce((b: unknown, [p, v, r]) => mutate(b, p, v, r), VALID)),
  },
  { weight: 1, arbitrary: fc.jsonValue() },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
);

describe('fuzzing /api/query with bad bodies', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({
      upstream: (source) => {
        source.rows = Array.from({ length: 50 }, (_, i) =>
          row(i, T0 + i * 10_000, ['US', 'DE', 'FR'][i % 3]!, i),
        );
      },
    });
    await h.syncNow();
  });
  afterAll(async () => h.app.close());

  it('answers 10,000 generated bad requests without a 5xx and stays up', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(badBody, async (body) => {
        const res = await h.app.inject({
          method: 'POST',
          url: '/api/query',
          headers: { 'content-type': 'application/json' },
          payload: typeof body === 'string' ? body : JSON.stringify(body),
        });
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode >= 500)
          throw new Error(`${res.statusCode} for ${JSON.stringify(body).slice(0, 300)}: ${res.body}`);
        if (res.statusCode >= 400) expect(typeof res.json().message).toBe('string');
      }),
      { numRuns: 10_000, seed: 20261124 },
    );
    // Most mutations are rejected; some stay valid. Both kinds were exercised.
    expect(statuses.get(400) ?? 0).toBeGreaterThan(3_000);
    expect(statuses.get(200) ?? 0).toBeGreaterThan(100);
    expect((await h.app.inject({ method: 'GET', url: '/api/health/live' })).statusCode).toBe(200);
    const ok = await h.app.inject({ method: 'POST', url: '/api/query', payload: VALID });
    expect(ok.statusCode).toBe(200);
  }, 180_000);
});
