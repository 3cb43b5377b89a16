/**
 * Issue 2: what LiveSync answers from its rollups equals what PostgreSQL computes from the
 * table, for every step, grouping, filter, format and aggregation, through a backfill and
 * then through updates, moves, soft deletes, resurrections and hard re-inserts.
 */
import type { DatasetSpec } from '../../src/config/dataset';
import { runMetricsQuery, type Format, type MetricsQuery } from '../../src/query/engine';
import { planBuckets } from '../../src/query/step';
import { MemoryStore } from '../../src/store/memory';
import type { Store } from '../../src/store/types';
import { redisStore } from '../helpers';
import { closeTo, COUNTRY_SQL, DAY, DEVICE_SQL, eventsSpec, HOUR, pgEngine, PgSchema } from './support';

const T0 = Date.UTC(2026, 0, 5);
const MIN = 60_000;
const ROWS = 50_000;
/** Every row stamped in this hour has a NULL amount: its buckets' sum/avg/min/max must be null. */
const NULL_HOUR = T0 + DAY + 5 * HOUR;

const AGGREGATIONS = [
  'count',
  'sum(amount)',
  'avg(duration_ms)',
  'min(amount)',
  'max(amount)',
  'distinct(user_id)',
  'avg(amount)',
];
const SQL_AGGREGATIONS = [
  'count(*)',
  'sum(amount)',
  'avg(duration_ms)',
  'min(amount)',
  'max(amount)',
  'count(DISTINCT user_id)',
  'avg(amount)',
];

interface Case {
  name: string;
  from: number;
  to: number;
  intervalMs: number;
  maxDataPoints: number;
  /** The step the plan must come to, so the matrix covers what it claims. */
  step: number;
}

/** Ranges deliberately not aligned to anything; steps reached through intervalMs or maxDataPoints. */
const CASES: Case[] = [
  {
    name: '1m (intervalMs)',
    from: T0 + DAY + 3 * HOUR + 17 * MIN + 13_500,
    to: T0 + DAY + 9 * HOUR + 24 * MIN + 1,
    intervalMs: MIN,
    maxDataPoints: 1000,
    step: MIN,
  },
  {
    name: '5m (intervalMs)',
    from: T0 + 12 * HOUR + 2 * MIN + 7,
    to: T0 + DAY + 12 * HOUR + 58 * MIN,
    intervalMs: 5 * MIN,
    maxDataPoints: 1000,
    step: 5 * MIN,
  },
  {
    name: '7m (odd step, base tier)',
    from: T0 + 5 * HOUR + 1,
    to: T0 + 2 * DAY + 5 * HOUR + 1,
    intervalMs: 7 * MIN,
    maxDataPoints: 5000,
    step: 7 * MIN,
  },
  {
    name: '1h (maxDataPoints)',
    from: T0 + DAY + 40 * MIN + 29_000,
    to: T0 + DAY + 40 * MIN + 29_000 + 36 * HOUR - 30_000,
    intervalMs: 1000,
    maxDataPoints: 36,
    step: HOUR,
  },
  {
    name: '3h (intervalMs)',
    from: T0 - 2 * HOUR - 5,
    to: T0 + 3 * DAY + 2 * HOUR,
    intervalMs: 3 * HOUR,
    maxDataPoints: 1000,
    step: 3 * HOUR,
  },
  {
    name: '1d (maxDataPoints)',
    from: T0 + 7 * HOUR + 13 * MIN,
    to: T0 + 7 * HOUR + 13 * MIN + 3 * DAY - MIN,
    intervalMs: 1000,
    maxDataPoints: 3,
    step: DAY,
  },
  {
    name: '2d (intervalMs, day tier)',
    from: T0 - 3 * DAY,
    to: T0 + 5 * DAY,
    intervalMs: 2 * DAY,
    maxDataPoints: 1000,
    step: 2 * DAY,
  },
];

const GROUPINGS: string[][] = [[], ['country'], ['country', 'device']];
const FILTERS: (Record<string, string[]> | undefined)[] = [undefined, { device: ['mobile', 'tablet'] }];
const FORMATS: Format[] = ['timeseries', 'table'];

type Row = (number | null)[];
/** `${time}|${labels}` → one value per aggregation. */
type Answer = Map<string, Row>;

const schema = new PgSchema();
let table: string;

beforeAll(async () => {
  await schema.create();
  table = await schema.createEvents();
  // One statement, one session: setseed makes the data the same on every run.
  await schema.sql(`
    SELECT setseed(0.42);
    INSERT INTO ${table} (ts, deleted_at, country, device, amount, duration_ms, user_id)
    SELECT ts,
           CASE WHEN random() < 0.01 THEN ts + interval '1 day' END,
           ${COUNTRY_SQL}, ${DEVICE_SQL},
           CASE WHEN random() < 0.1 OR ts >= to_timestamp(${NULL_HOUR / 1000})
                     AND ts < to_timestamp(${(NULL_HOUR + HOUR) / 1000}) THEN NULL
                ELSE round((random() * 1000)::numeric, 2) END,
           CASE WHEN random() < 0.03 THEN NULL ELSE (random() * 5000)::int END,
           CASE WHEN random() < 0.02 THEN NULL ELSE 'u' || floor(random() * 2000) END
    FROM (SELECT to_timestamp(${T0 / 1000}) + random() * interval '3 days' AS ts
          FROM generate_series(1, ${ROWS})) g`);
  await schema.sql(`ANALYZE ${table}`);
});

afterAll(() => schema.drop());

async function sqlAnswer(c: Case, groupBy: string[], filters: Record<string, string[]> | undefined) {
  const spec = eventsSpec(table, { distinctFrom: '1m' });
  const plan = planBuckets(spec, c.from, c.to, c.intervalMs, c.maxDataPoints);
  const values: unknown[] = [`${plan.stepMs} milliseconds`, plan.from / 1000, plan.to / 1000];
  let where = `deleted_at IS NULL AND ts >= to_timestamp($2) AND ts < to_timestamp($3)`;
  if (filters?.device) {
    values.push(filters.device);
    where += ` AND device = ANY($${values.length})`;
  }
  const cols = groupBy.map((g) => `, ${g}`).join('');
  const rows = await schema.sql<Record<string, string | null>>(
    `SELECT (extract(epoch FROM date_bin($1::interval, ts, 'epoch')) * 1000)::bigint::text AS t${cols},
            ${SQL_AGGREGATIONS.map((a, i) => `(${a})::text AS a${i}`).join(', ')}
     FROM ${table} WHERE ${where} GROUP BY 1${groupBy.map((_, i) => `, ${i + 2}`).join('')}`,
    values,
  );
  const answer: Answer = new Map();
  for (const r of rows) {
    const key = [r.t, ...groupBy.map((g) => r[g] ?? '')].join('|');
    answer.set(
      key,
      SQL_AGGREGATIONS.map((_, i) => (r[`a${i}`] === null ? null : Number(r[`a${i}`]))),
    );
  }
  return { plan, answer };
}

async function storeAnswer(
  store: Store,
  spec: DatasetSpec,
  c: Case,
  groupBy: string[],
  filters: Record<string, string[]> | undefined,
  format: Format,
): Promise<Answer> {
  const query: MetricsQuery = { refId: 'A', dataset: 'events', aggregations: AGGREGATIONS, groupBy, format };
  if (filters) query.filters = filters;
  const { frames } = await runMetricsQuery(
    store,
    spec,
    query,
    { from: c.from, to: c.to },
    c.intervalMs,
    c.maxDataPoints,
    'q',
  );
  const answer: Answer = new Map();
  if (format === 'table') {
    expect(frames).toHaveLength(1);
    const [frame] = frames;
    const names = frame!.schema.fields.map((f) => f.name);
    expect(names).toEqual(['time', ...groupBy, ...AGGREGATIONS]);
    const columns = frame!.data.values;
    const times = columns[0] as number[];
    // Long format, ordered by time as SQL's ORDER BY time would be.
    expect(times.every((t, i) => i === 0 || t >= times[i - 1]!)).toBe(true);
    times.forEach((t, r) => {
      const labels = groupBy.map((_, g) => (columns[1 + g]![r] as string | null) ?? '');
      const key = [String(t), ...labels].join('|');
      if (answer.has(key)) throw new Error(`${key} appears twice in the table`);
      answer.set(
        key,
        AGGREGATIONS.map((_, a) => columns[1 + groupBy.length + a]![r] as number | null),
      );
    });
    return answer;
  }
  for (const frame of frames) {
    const fields = frame.schema.fields;
    expect(fields.map((f) => f.name)).toEqual(['time', ...AGGREGATIONS]);
    const labels = fields[1]!.labels ?? {};
    expect(Object.keys(labels)).toEqual(groupBy);
    const [times, ...columns] = frame.data.values as [number[], ...(number | null)[][]];
    times.forEach((t, r) => {
      const key = [String(t), ...groupBy.map((g) => labels[g] ?? '')].join('|');
      if (answer.has(key)) throw new Error(`${key} appears twice in the frames`);
      answer.set(
        key,
        columns.map((col) => col[r]!),
      );
    });
  }
  return answer;
}

/** How far HyperLogLog distinct counts strayed: comparisons made, and how many were off by more than 2 % (or ±2). */
interface DistinctStats {
  compared: number;
  beyond2pct: number;
}

/**
 * Differences between two answers, as readable lines (empty when they agree). HyperLogLog
 * counts are estimates (standard error 0.81 %): each must be within 4 % (or ±3), and the
 * caller checks that at most 1 % of them are off by more than 2 % (or ±2).
 */
function differences(got: Answer, want: Answer, exactDistinct: boolean, stats: DistinctStats): string[] {
  const out: string[] = [];
  for (const key of want.keys()) if (!got.has(key)) out.push(`${key}: missing`);
  for (const key of got.keys()) if (!want.has(key)) out.push(`${key}: not in SQL`);
  for (const [key, w] of want) {
    const g = got.get(key);
    if (!g) continue;
    AGGREGATIONS.forEach((agg, i) => {
      const a = g[i] ?? null;
      const b = w[i] ?? null;
      let ok: boolean;
      if (agg === 'count' || agg.startsWith('min') || agg.startsWith('max')) ok = a === b;
      else if (agg.startsWith('distinct')) {
        if (exactDistinct || a === null || b === null) ok = a === b;
        else {
          const error = Math.abs(a - b);
          stats.compared++;
          if (error > Math.max(2, 0.02 * b)) stats.beyond2pct++;
          ok = error <= Math.max(3, 0.04 * b);
        }
      } else ok = closeTo(a, b);
      if (!ok) out.push(`${key} ${agg}: got ${a}, SQL ${b}`);
    });
  }
  return out;
}

/** Changes made in PostgreSQL between syncs; `seed` gives each store its own round. */
async function mutate(seed: number): Promise<void> {
  const live = `SELECT id FROM ${table} WHERE deleted_at IS NULL ORDER BY random()`;
  await schema.sql(`
    SELECT setseed(${seed});
    -- amounts change, some to and from NULL
    UPDATE ${table} SET amount = round((random() * 1000)::numeric, 2) WHERE id IN (${live} LIMIT 400);
    UPDATE ${table} SET amount = NULL WHERE id IN (${live} LIMIT 100);
    UPDATE ${table} SET amount = round((random() * 1000)::numeric, 2)
      WHERE id IN (SELECT id FROM ${table} WHERE amount IS NULL AND deleted_at IS NULL ORDER BY random() LIMIT 100);
    -- the rows holding an hour's extremes lose them: min and max must be recomputed
    UPDATE ${table} SET amount = round(amount / 10, 2) WHERE id IN (
      SELECT id FROM (SELECT DISTINCT ON (date_bin('1 hour', ts, 'epoch'), country) id
                      FROM ${table} WHERE deleted_at IS NULL AND amount IS NOT NULL
                      ORDER BY date_bin('1 hour', ts, 'epoch'), country, amount DESC) x
      ORDER BY random() LIMIT 150);
    UPDATE ${table} SET amount = amount + 500 WHERE id IN (
      SELECT id FROM (SELECT DISTINCT ON (date_bin('1 hour', ts, 'epoch'), device) id
                      FROM ${table} WHERE deleted_at IS NULL AND amount IS NOT NULL
                      ORDER BY date_bin('1 hour', ts, 'epoch'), device, amount ASC) x
      ORDER BY random() LIMIT 40);
    -- events move to other buckets (some by minutes, some by hours)
    UPDATE ${table} SET ts = ts + (random() * 10 - 5) * interval '1 hour' WHERE id IN (${live} LIMIT 300);
    UPDATE ${table} SET ts = ts + (1 + floor(random() * 5)) * interval '1 minute' WHERE id IN (${live} LIMIT 200);
    -- countries change, some to NULL
    UPDATE ${table} SET country = (ARRAY['US','DE','ZA',NULL])[1 + floor(random() * 4)::int]
      WHERE id IN (${live} LIMIT 300);
    -- soft deletes, and resurrections of rows deleted before
    UPDATE ${table} SET deleted_at = now() WHERE id IN (${live} LIMIT 300);
    UPDATE ${table} SET deleted_at = NULL WHERE id IN (
      SELECT id FROM ${table} WHERE deleted_at IS NOT NULL ORDER BY random() LIMIT 150);
    -- hard delete and re-insert under the same id, with other values
    CREATE TEMP TABLE reinsert ON COMMIT DROP AS SELECT id FROM ${table} ORDER BY random() LIMIT 200;
    DELETE FROM ${table} WHERE id IN (SELECT id FROM reinsert);
    INSERT INTO ${table} (id, ts, country, device, amount, duration_ms, user_id)
      SELECT id, to_timestamp(${T0 / 1000}) + random() * interval '3 days', ${COUNTRY_SQL}, ${DEVICE_SQL},
             round((random() * 1000)::numeric, 2), (random() * 5000)::int, 'u' || floor(random() * 2000)
      FROM reinsert;
    -- and new events
    INSERT INTO ${table} (ts, country, device, amount, duration_ms, user_id)
      SELECT to_timestamp(${T0 / 1000}) + random() * interval '3 days', ${COUNTRY_SQL}, ${DEVICE_SQL},
             round((random() * 1000)::numeric, 2), (random() * 5000)::int, 'u' || floor(random() * 2500)
      FROM generate_series(1, 500);`);
}

interface Subject {
  store: Store;
  exactDistinct: boolean;
  cleanup: () => Promise<void>;
}

const subjects: [string, () => Promise<Subject>][] = [
  ['memory', async () => ({ store: new MemoryStore(), exactDistinct: true, cleanup: async () => {} })],
  [
    'redis',
    async () => {
      const { store, cleanup } = await redisStore();
      return { store, exactDistinct: false, cleanup };
    },
  ],
];

describe.each(subjects)('%s store: query results equal SQL', (kind, make) => {
  let subject: Subject;
  let sync: ReturnType<typeof pgEngine>;
  let spec: DatasetSpec;

  beforeAll(async () => {
    subject = await make();
    // Distinct counts at every tier, so that every step compares them (the default keeps them from 1h on).
    spec = eventsSpec(table, { batchSize: 5000, distinctFrom: '1m' });
    sync = pgEngine(spec, subject.store);
  });

  afterAll(async () => {
    await sync?.close();
    await subject?.cleanup();
  });

  async function compareAll(): Promise<{ compared: number; nullSums: number }> {
    const state = await subject.store.readState('events');
    const [{ live }] = (await schema.sql<{ live: string }>(
      `SELECT count(*)::text AS live FROM ${table} WHERE deleted_at IS NULL`,
    )) as [{ live: string }];
    expect(state?.records).toBe(Number(live));

    let compared = 0;
    let nullSums = 0;
    const distinct: DistinctStats = { compared: 0, beyond2pct: 0 };
    const problems: string[] = [];
    for (const c of CASES) {
      for (const groupBy of GROUPINGS) {
        for (const filters of FILTERS) {
          const { plan, answer: want } = await sqlAnswer(c, groupBy, filters);
          expect({ case: c.name, step: plan.stepMs }).toEqual({ case: c.name, step: c.step });
          for (const format of FORMATS) {
            const got = await storeAnswer(subject.store, spec, c, groupBy, filters, format);
            const where = `${c.name} groupBy=[${groupBy}] filters=${JSON.stringify(filters ?? {})} ${format}`;
            problems.push(
              ...differences(got, want, subject.exactDistinct, distinct)
                .slice(0, 5)
                .map((d) => `${where}: ${d}`),
            );
            compared += want.size;
          }
          for (const row of want.values()) if (row[1] === null) nullSums++;
        }
      }
    }
    expect(problems).toEqual([]);
    if (!subject.exactDistinct) {
      expect(distinct.compared).toBeGreaterThan(10_000);
      expect(distinct.beyond2pct / distinct.compared).toBeLessThanOrEqual(0.01);
    }
    return { compared, nullSums };
  }

  it('after the backfill', async () => {
    await sync.syncOnce();
    const { compared, nullSums } = await compareAll();
    // The matrix really compared something, NULL-only buckets included.
    expect(compared).toBeGreaterThan(50_000);
    expect(nullSums).toBeGreaterThan(100);
  });

  it('after updates, moves, soft deletes, resurrections and hard re-inserts', async () => {
    const before = (await subject.store.readState('events'))!;
    await mutate(kind === 'memory' ? 0.17 : 0.71);
    await sync.syncOnce();
    const after = (await subject.store.readState('events'))!;
    expect(after.generation).toBe(before.generation);
    expect(after.version).toBeGreaterThan(before.version);
    await compareAll();
  });
});
