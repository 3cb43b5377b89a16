import { randomBytes } from 'node:crypto';
import { repoPath, run } from './helpers';

/** The PostgreSQL the backend's tests use; the demo schema goes into a throw-away schema of it. */
const PG_URL = new URL(process.env['TEST_DATABASE_URL'] ?? 'postgres://root@127.0.0.1:5432/test');
const SCHEMA = `lstest_demo_${randomBytes(5).toString('hex')}`;

/** libpq's variables for PG_URL, with the throw-away schema first on the search path. */
const pgEnv: NodeJS.ProcessEnv = {
  ...process.env,
  PGHOST: PG_URL.hostname,
  PGPORT: PG_URL.port || '5432',
  PGUSER: decodeURIComponent(PG_URL.username),
  PGPASSWORD: decodeURIComponent(PG_URL.password),
  PGDATABASE: PG_URL.pathname.slice(1),
  PGOPTIONS: `-c search_path=${SCHEMA}`,
};

function psql(args: string[]): string {
  const result = run('psql', ['--no-psqlrc', '--quiet', '--set', 'ON_ERROR_STOP=1', ...args], { env: pgEnv });
  if (result.status !== 0) throw new Error(`psql ${args.join(' ')}: ${result.output}`);
  return result.output.trim();
}

/** One row of one query, as text columns. */
function row(sql: string): string[] {
  return psql(['--tuples-only', '--no-align', '--field-separator=|', '--command', sql]).split('|');
}

describe('demo upstream (provisioning/postgres)', () => {
  beforeAll(() => {
    psql(['--command', `CREATE SCHEMA ${SCHEMA}`]);
    psql(['--file', repoPath('provisioning/postgres/init/01-events.sql')]);
  });

  afterAll(() => {
    psql(['--command', `DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`]);
  });

  test('creates the events table with six hours of history, none of it deleted', () => {
    const [rows, deleted, oldest, newest] = row(
      `SELECT count(*), count(deleted_at), extract(epoch FROM now() - min(ts))::int, extract(epoch FROM now() - max(ts))::int FROM events`,
    );
    expect(Number(rows)).toBe(10_800);
    expect(Number(deleted)).toBe(0);
    expect(Number(oldest)).toBeLessThanOrEqual(21_600);
    expect(Number(oldest)).toBeGreaterThan(20_000);
    expect(Number(newest)).toBeLessThan(600);
  });

  test('has the columns the compose service config syncs, and the keyset index', () => {
    const columns = psql([
      '--tuples-only',
      '--no-align',
      '--command',
      `SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns
       WHERE table_schema = '${SCHEMA}' AND table_name = 'events' ORDER BY ordinal_position`,
    ]).split('\n');
    expect(columns).toEqual([
      'id bigint NO',
      'ts timestamp with time zone NO',
      'updated_at timestamp with time zone NO',
      'deleted_at timestamp with time zone YES',
      'country text NO',
      'device text NO',
      'amount numeric NO',
      'duration_ms integer NO',
      'user_id text NO',
    ]);
    const [definition] = row(
      `SELECT indexdef FROM pg_indexes WHERE schemaname = '${SCHEMA}' AND indexname = 'events_updated_at_id'`,
    );
    expect(definition).toContain('(updated_at, id)');
  });

  test('an update moves the row forward on updated_at', () => {
    const [before] = row(`SELECT updated_at FROM events WHERE id = 1`);
    const [after] = row(`UPDATE events SET amount = amount + 1 WHERE id = 1 RETURNING updated_at`);
    expect(new Date(after as string).getTime()).toBeGreaterThan(new Date(before as string).getTime());
  });

  test('the demo writer inserts, updates and soft-deletes rows, round after round', () => {
    const [startId, startCursor] = row(`SELECT max(id), max(updated_at) FROM events`);
    const result = run('sh', [repoPath('provisioning/postgres/demo-writer.sh')], {
      env: {
        ...pgEnv,
        DEMO_WRITER_ROUNDS: '3',
        DEMO_WRITER_INTERVAL: '0',
        DEMO_WRITER_INSERTS: '10',
        DEMO_WRITER_UPDATES: '3',
        DEMO_WRITER_DELETES: '1',
      },
    });
    expect(result).toEqual({ status: 0, output: expect.stringContaining('demo-writer:') });
    const [inserted, deleted, moved] = row(
      `SELECT count(*) FILTER (WHERE id > ${startId}),
              count(deleted_at),
              count(*) FILTER (WHERE id <= ${startId} AND updated_at > '${startCursor}')
       FROM events`,
    );
    expect(Number(inserted)).toBe(30);
    expect(Number(deleted)).toBe(3);
    // Updates and deletes pick among the newest rows: some of them are older ones, moved forward.
    expect(Number(moved)).toBeGreaterThan(0);
  });
});
