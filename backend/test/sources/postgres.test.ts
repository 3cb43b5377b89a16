import type { PostgresSourceConfig } from '../../src/config/schema';
import { PostgresSource } from '../../src/sources/postgres';
import { quoteIdent, quoteTable } from '../../src/sources/postgres-sql';
import { SourceError, type Source } from '../../src/sources/types';
import { drain, PG_URL, specFor, TestSchema, type SpecOptions } from './helpers';

const schema = new TestSchema();
const open: Source[] = [];

beforeAll(() => schema.create());
afterEach(async () => {
  await Promise.all(open.splice(0).map((source) => source.close()));
});
afterAll(() => schema.drop());

function config(overrides: Partial<PostgresSourceConfig>): PostgresSourceConfig {
  return {
    kind: 'postgres',
    url: PG_URL,
    id: 'id',
    time: 'created_at',
    cursor: 'updated_at',
    poolSize: 2,
    statementTimeout: '30s',
    ...overrides,
  };
}

function source(overrides: Partial<PostgresSourceConfig>, options: SpecOptions = {}): PostgresSource {
  const created = new PostgresSource(specFor(config(overrides), options), config(overrides));
  open.push(created);
  return created;
}

/** The rejection of a promise that must reject, for assertions on its fields. */
async function failure(promise: Promise<unknown>): Promise<SourceError> {
  const err = await promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
  if (!(err instanceof SourceError)) throw err;
  return err;
}

/** A table of the common shape: `cursorType` for updated_at. */
async function table(name: string, cursorType = 'timestamptz'): Promise<string> {
  const qualified = `${schema.name}.${name}`;
  await schema.sql(
    `CREATE TABLE ${qualified} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL,
      updated_at ${cursorType}, deleted_at timestamptz, country text, amount numeric, user_id bigint)`,
  );
  return qualified;
}

const ids = (records: { id: string }[]) => records.map((record) => record.id);

describe('PostgresSource', () => {
  it('reads 10,000 rows sharing one updated_at across batches of 500, each exactly once', async () => {
    const name = await table('same_ts');
    await schema.sql(
      `INSERT INTO ${name} (id, created_at, updated_at)
       SELECT i, now() - interval '1 hour', now() - interval '1 hour' FROM generate_series(1, 10000) i`,
    );
    const { records, fetches } = await drain(source({ table: name }), 500);
    expect(records).toHaveLength(10_000);
    expect(new Set(ids(records)).size).toBe(10_000);
    expect(new Set(records.map((r) => r.cursor)).size).toBe(1);
    expect(fetches).toBe(21);
  });

  it('reads nothing newer than now() - lag', async () => {
    const name = await table('lagged');
    await schema.sql(
      `INSERT INTO ${name} (id, created_at, updated_at) VALUES
        (1, now(), now() - interval '2 minutes'),
        (2, now(), now() - interval '10 seconds'),
        (3, now(), now() + interval '1 hour')`,
    );
    const { records } = await drain(source({ table: name }, { lagMs: 60_000 }), 100);
    expect(ids(records)).toEqual(['1']);
  });

  it('rewinds to re-read a row committed late with a cursor behind the position', async () => {
    const name = await table('rewind');
    const at = (seconds: number) => `2024-01-01T00:00:${String(seconds).padStart(2, '0')}Z`;
    const insert = (id: number, seconds: number) =>
      schema.sql(`INSERT INTO ${name} (id, created_at, updated_at) VALUES ($1, $2, $2)`, [id, at(seconds)]);
    await insert(1, 0);
    await insert(2, 6);
    await insert(3, 8);
    const src = source({ table: name });
    const first = await drain(src, 10);
    expect(ids(first.records)).toEqual(['1', '2', '3']);

    await insert(4, 5);
    expect((await src.fetch({ after: first.last, limit: 10 })).records).toEqual([]);
    const rewound = await src.fetch({ after: first.last, limit: 10, rewindMs: 5_000 });
    expect(ids(rewound.records)).toEqual(['4', '2', '3']);
    // The window's start is inclusive: 8 s − 3 s lands exactly on row 4.
    const edge = await src.fetch({ after: first.last, limit: 10, rewindMs: 3_000 });
    expect(ids(edge.records)).toEqual(['4', '2', '3']);
    const past = await src.fetch({ after: first.last, limit: 10, rewindMs: 2_999 });
    expect(ids(past.records)).toEqual(['2', '3']);
  });

  it('returns tombstones as deleted, from a nullable column or a boolean flag', async () => {
    const name = await table('tombstones');
    await schema.sql(`ALTER TABLE ${name} ADD COLUMN is_deleted boolean`);
    await schema.sql(
      `INSERT INTO ${name} (id, created_at, updated_at, deleted_at, is_deleted) VALUES
        (1, now(), now() - interval '1 minute', NULL, false),
        (2, now(), now() - interval '1 minute', now(), true),
        (3, now(), now() - interval '1 minute', NULL, NULL)`,
    );
    const deleted = async (column: string | undefined) =>
      (await drain(source({ table: name, deleted: column }), 10)).records.map((r) => r.deleted);
    expect(await deleted('deleted_at')).toEqual([false, true, false]);
    expect(await deleted('is_deleted')).toEqual([false, true, false]);
    expect(await deleted(undefined)).toEqual([false, false, false]);
  });

  describe.each(['timestamptz', 'timestamp'])('a %s cursor', (cursorType) => {
    it('round-trips microseconds exactly when more rows than a batch share one millisecond', async () => {
      const name = await table(`micros_${cursorType}`, cursorType);
      // 1,200 rows in one millisecond: 1,000 distinct microseconds, 200 of them shared by two rows.
      await schema.sql(
        `INSERT INTO ${name} (id, created_at, updated_at)
         SELECT i, now(), '2024-01-01 00:00:00.123'::${cursorType} + (i % 1000) * interval '1 microsecond'
         FROM generate_series(1, 1200) i`,
      );
      const { records } = await drain(source({ table: name }), 500);
      expect(records).toHaveLength(1200);
      expect(new Set(ids(records)).size).toBe(1200);
      const base = 1_704_067_200_123_000n;
      for (const record of records) {
        expect(record.cursor).toBe(String(base + (BigInt(record.id) % 1000n)));
      }
    });
  });

  it('pages an integer cursor and ignores rewindMs for it', async () => {
    const name = `${schema.name}.versions`;
    await schema.sql(`CREATE TABLE ${name} (id int PRIMARY KEY, created_at timestamptz, version bigint)`);
    await schema.sql(
      `INSERT INTO ${name} SELECT i, now(), 9007199254740993 + i / 3 FROM generate_series(1, 10) i`,
    );
    const src = source({ table: name, cursor: 'version' });
    const { records, last } = await drain(src, 4);
    expect(ids(records)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
    expect(records[0]?.cursor).toBe('9007199254740993');
    expect(last).toEqual({ cursor: '9007199254740996', id: '10' });
    expect((await src.fetch({ after: last, limit: 10, rewindMs: 60_000 })).records).toEqual([]);
    expect(
      src.compare({ cursor: '9007199254740993', id: '9' }, { cursor: '9007199254740993', id: '10' }),
    ).toBeLessThan(0);
  });

  it('orders text ids bytewise, the same way compare() does', async () => {
    const name = `${schema.name}.text_ids`;
    // A linguistic collation on the column (where ICU is built in) sorts 'a' before 'B':
    // the source must still page in byte order, the order compare() knows.
    const [icu] = await schema.sql(`SELECT 1 FROM pg_collation WHERE collname = 'en-x-icu'`);
    const collation = icu ? 'COLLATE "en-x-icu"' : '';
    await schema.sql(
      `CREATE TABLE ${name} (id text ${collation} PRIMARY KEY, created_at timestamptz, updated_at timestamptz)`,
    );
    await schema.sql(
      `INSERT INTO ${name} SELECT v, now(), '2024-01-01Z' FROM unnest(ARRAY['a', 'B', '10', '9', 'é']) v`,
    );
    const src = source({ table: name });
    const { records } = await drain(src, 1);
    expect(ids(records)).toEqual(['10', '9', 'B', 'a', 'é']);
    for (let i = 1; i < records.length; i++) {
      expect(src.compare(records[i - 1]!, records[i]!)).toBeLessThan(0);
    }
  });

  it('maps time to floored epoch milliseconds and fields to text and numbers', async () => {
    const name = await table('values');
    await schema.sql(
      `INSERT INTO ${name} VALUES
        (1, '2024-01-01 00:00:00.999999+00', now() - interval '1 minute', NULL, 'DE', 12.5, 42),
        (2, '1969-12-31 23:59:59.9995+00', now() - interval '1 minute', NULL, NULL, NULL, NULL),
        (3, '2024-01-01 00:00:00+00', now() - interval '1 minute', NULL, 'US', 'NaN', 7)`,
    );
    const src = source(
      { table: name },
      { dimensions: ['country'], metrics: ['amount'], distinct: ['user_id'] },
    );
    const { records } = await drain(src, 10);
    expect(
      records.map(({ id, time, dims, metrics, distinct }) => ({ id, time, dims, metrics, distinct })),
    ).toEqual([
      { id: '1', time: 1_704_067_200_999, dims: ['DE'], metrics: [12.5], distinct: ['42'] },
      { id: '2', time: -1, dims: [null], metrics: [null], distinct: [null] },
      { id: '3', time: 1_704_067_200_000, dims: ['US'], metrics: [null], distinct: ['7'] },
    ]);
  });

  it('reads a query: wrapped as a subquery, trailing semicolon and all', async () => {
    const name = await table('for_query');
    await schema.sql(
      `INSERT INTO ${name} (id, created_at, updated_at, country)
       SELECT i, now(), now() - interval '1 minute', CASE WHEN i % 2 = 0 THEN 'US' ELSE 'FR' END
       FROM generate_series(1, 20) i`,
    );
    const src = source(
      { query: `SELECT id, created_at, updated_at, country FROM ${name} WHERE country <> 'US';` },
      { dimensions: ['country'] },
    );
    const { records } = await drain(src, 3);
    expect(ids(records)).toEqual(['1', '3', '5', '7', '9', '11', '13', '15', '17', '19']);
    expect(records.every((r) => r.dims[0] === 'FR')).toBe(true);
    expect(await src.estimateRemaining(null)).toBeNull();
  });

  it('estimates what is left from planner statistics', async () => {
    const name = await table('estimate');
    await schema.sql(
      `INSERT INTO ${name} (id, created_at, updated_at)
       SELECT i, now(), '2024-01-01Z'::timestamptz + i * interval '1 second' FROM generate_series(1, 20000) i`,
    );
    await schema.sql(`ANALYZE ${name}`);
    const src = source({ table: name });
    const all = await src.estimateRemaining(null);
    expect(all).toBeGreaterThan(15_000);
    expect(all).toBeLessThan(25_000);
    // Three quarters of the way through the cursor range, about a quarter is left.
    const after = { cursor: String(1_704_067_200_000_000 + 15_000 * 1_000_000), id: '15000' };
    const rest = await src.estimateRemaining(after);
    expect(rest).toBeGreaterThan(2_500);
    expect(rest).toBeLessThan(7_500);
  });

  it('quotes identifiers, keeping their case and escaping quotes', async () => {
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteTable('public.Events')).toBe('"public"."Events"');
    await schema.sql(
      `CREATE TABLE ${schema.name}."MixedCase" ("Id" int, "When" timestamptz, "Rev" int, "Country" text)`,
    );
    await schema.sql(`INSERT INTO ${schema.name}."MixedCase" VALUES (1, now(), 1, 'JP')`);
    const src = source(
      { table: `${schema.name}.MixedCase`, id: 'Id', time: 'When', cursor: 'Rev' },
      { dimensions: ['Country'] },
    );
    expect((await drain(src, 10)).records.map((r) => r.dims)).toEqual([['JP']]);
  });

  it('requires exactly one of table and query', () => {
    expect(() => source({})).toThrow(
      'datasets.events.source: set exactly one of "table" or "query" (neither is set)',
    );
    expect(() => source({ table: 'a', query: 'SELECT 1' })).toThrow('(both are set)');
  });

  it('reports a missing table as permanent, naming the dataset', async () => {
    const err = await failure(source({ table: `${schema.name}.evnts` }).fetch({ after: null, limit: 10 }));
    expect(err.errorClass).toBe('permanent');
    expect(err.origin).toBe('config');
    expect(err.message).toBe(`events: relation "${schema.name}.evnts" does not exist`);
  });

  it('reports a missing column as permanent', async () => {
    const name = await table('columns');
    const err = await failure(
      source({ table: name }, { metrics: ['nope'] }).fetch({ after: null, limit: 10 }),
    );
    expect(err.errorClass).toBe('permanent');
    expect(err.origin).toBe('config');
    expect(err.message).toMatch(/^events: column columns.nope does not exist/);
  });

  it('reports an unsupported cursor type as permanent', async () => {
    const name = await table('text_cursor');
    const err = await failure(source({ table: name, cursor: 'country' }).fetch({ after: null, limit: 10 }));
    expect(err.errorClass).toBe('permanent');
    expect(err.message).toContain('cursor column "country" must be');
  });

  it('reports a refused connection as transient, without the password', async () => {
    const url = 'postgres://root:Sup3r-Secret%21@127.0.0.1:1/test';
    const err = await failure(source({ url, table: 'events' }).fetch({ after: null, limit: 10 }));
    expect(err.errorClass).toBe('transient');
    expect(err.origin).toBe('upstream');
    expect(err.message).toMatch(/^events: cannot reach PostgreSQL: .*ECONNREFUSED/);
    for (const text of [err.message, err.stack ?? '', String(err)]) {
      expect(text).not.toContain('Sup3r-Secret');
    }
  });

  it('keeps the password out of server errors too', async () => {
    const url = PG_URL.replace('://root@', '://root:Sup3r-Secret@');
    expect(url).toContain('Sup3r-Secret');
    const err = await failure(
      source({ url, table: `${schema.name}.missing` }).fetch({ after: null, limit: 1 }),
    );
    expect(err.errorClass).toBe('permanent');
    expect(err.message).not.toContain('Sup3r-Secret');
  });

  it('reports a missing database as permanent', async () => {
    const url = PG_URL.replace(/\/[^/]*$/, '/ls_no_such_database');
    const err = await failure(source({ url, table: 'events' }).fetch({ after: null, limit: 1 }));
    expect(err.errorClass).toBe('permanent');
    expect(err.origin).toBe('config');
    expect(err.message).toBe('events: database "ls_no_such_database" does not exist');
  });

  it('reports a statement timeout as transient', async () => {
    const name = await table('slow');
    await schema.sql(
      `INSERT INTO ${name} (id, created_at, updated_at) VALUES (1, now(), now() - interval '1 minute')`,
    );
    const src = source({ query: `SELECT *, pg_sleep(5) FROM ${name}`, statementTimeout: '100ms' });
    const err = await failure(src.fetch({ after: null, limit: 1 }));
    expect(err.errorClass).toBe('transient');
    expect(err.message).toBe('events: canceling statement due to statement timeout');
  });

  it('rejects with the reason of an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort(new Error('shutting down'));
    const name = await table('aborted');
    await expect(
      source({ table: name }).fetch({ after: null, limit: 1, signal: controller.signal }),
    ).rejects.toThrow('shutting down');
  });

  it('recovers after a failed first use', async () => {
    const src = source({ table: `${schema.name}.later` });
    expect((await failure(src.fetch({ after: null, limit: 1 }))).errorClass).toBe('permanent');
    await schema.sql(
      `CREATE TABLE ${schema.name}.later (id int, created_at timestamptz, updated_at timestamptz);
       INSERT INTO ${schema.name}.later VALUES (1, now(), now() - interval '1 minute')`,
    );
    expect(ids((await drain(src, 10)).records)).toEqual(['1']);
  });
});
