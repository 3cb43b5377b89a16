/**
 * Issue 12, PostgreSQL change data capture (`mode: cdc`) against a cluster of the test's own
 * with wal_level=logical: the snapshot and the stream end equal to SQL cell by cell (inserts,
 * updates that move rows across buckets, hard and soft deletes, a transaction larger than many
 * batches, a truncate); the slot is confirmed only up to what the store committed; a SIGKILL
 * mid-stream, a dropped slot and a restarted upstream lose nothing and count nothing twice.
 * Missing wal_level and privileges fail with a message that names them.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { decodePosition } from '../../src/sources/postgres-cdc-position';
import { ResyncNeededError, SourceError } from '../../src/sources/types';
import { PostgresCdcSource } from '../../src/sources/postgres-cdc';
import { CdcRows } from '../../src/sources/postgres-cdc-rows';
import { ChangeStream } from '../../src/sources/postgres-cdc-stream';
import { RedisStore } from '../../src/store/redis';
import type { Store } from '../../src/store/types';
import { deleteKeys, PG_URL, REDIS_URL, redisStore, uniquePrefix } from '../helpers';
import { ThrowawayPostgres } from '../servers';
import { cdcEngine, cdcSpec, slotPosition } from './cdc-support';
import type { CdcWorkerMessage } from './cdc-worker';
import {
  COUNTRY_SQL,
  DEVICE_SQL,
  expectHourlyEqual,
  PgSchema,
  sqlHourly,
  storeHourly,
  until,
} from './support';

const T0 = Date.UTC(2026, 0, 5);
const DAY = 86_400_000;
const RANGE = { from: T0 - DAY, to: T0 + 4 * DAY };

const pg = new ThrowawayPostgres({
  wal_level: 'logical',
  max_wal_senders: '20',
  max_replication_slots: '20',
});
let schema: PgSchema;
const cleanups: (() => Promise<void>)[] = [];
const children = new Set<ChildProcess>();

beforeAll(async () => {
  await pg.start();
  schema = new PgSchema(pg.url);
  await schema.create();
}, 60_000);

/** Each test's engines, stores and Redis keys go when it ends: a stopped engine holds no replication connection. */
afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
}, 60_000);

afterAll(async () => {
  await schema?.pool.end().catch(() => undefined);
  await pg.stop();
}, 60_000);

/** `rows` events over two days from T0, as SQL (one statement, one transaction). */
function insertSql(table: string, rows: number, offsetHours = 0): string {
  return `INSERT INTO ${table} (ts, country, device, amount, duration_ms, user_id)
    SELECT to_timestamp(${T0 / 1000}) + interval '${offsetHours} hours' + (i::float8 / ${rows}) * interval '2 days',
           ${COUNTRY_SQL}, ${DEVICE_SQL},
           CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * 1000)::numeric, 2) END,
           (random() * 5000)::int, 'u' || floor(random() * 5000)
    FROM generate_series(1, ${rows}) i`;
}

/** Updates that move rows across buckets and groups, hard deletes and soft deletes, each its own transaction. */
async function churn(table: string, count: number): Promise<void> {
  const pick = `SELECT id FROM ${table} ORDER BY random() LIMIT ${count}`;
  await schema.sql(`UPDATE ${table} SET ts = ts + interval '3 hours' WHERE id IN (${pick})`);
  await schema.sql(`UPDATE ${table} SET country = 'ZZ', amount = amount + 1 WHERE id IN (${pick})`);
  await schema.sql(`DELETE FROM ${table} WHERE id IN (${pick})`);
  await schema.sql(`UPDATE ${table} SET deleted_at = now() WHERE id IN (${pick})`);
  await schema.sql(insertSql(table, count, 5));
}

async function live(table: string): Promise<number> {
  const [row] = await schema.sql<{ n: string }>(
    `SELECT count(*)::text AS n FROM ${table} WHERE deleted_at IS NULL`,
  );
  return Number(row!.n);
}

/** Waits until the store answers exactly what SQL does (every hour × country cell, and the record count). */
async function untilEqual(
  store: Store,
  table: string,
  timeoutMs = 60_000,
  status?: () => unknown,
): Promise<void> {
  const spec = cdcSpec(table, pg.url);
  const equal = async () => {
    const [got, want, state, rows] = await Promise.all([
      storeHourly(store, spec, RANGE),
      sqlHourly(schema, table),
      store.readState('events'),
      live(table),
    ]);
    try {
      expectHourlyEqual(got, want);
      return state?.records === rows;
    } catch {
      return false;
    }
  };
  await until(equal, timeoutMs, `${table} in the store equal to SQL`).catch(async (err: Error) => {
    const state = await store.readState('events');
    throw new Error(
      `${err.message}; the store holds ${JSON.stringify(state)}, SQL ${await live(table)} rows ${JSON.stringify(status?.())}`,
    );
  });
  expectHourlyEqual(await storeHourly(store, spec, RANGE), await sqlHourly(schema, table));
}

async function freshStore(): Promise<RedisStore> {
  const { store, cleanup } = await redisStore();
  cleanups.push(cleanup);
  return store;
}

async function freshTable(name: string, rows: number): Promise<string> {
  const table = await schema.createEvents(name);
  if (rows > 0) await schema.sql(insertSql(table, rows));
  return table;
}

test('snapshot, then inserts, updates across buckets, hard and soft deletes and a 30k-row transaction: equal to SQL', async () => {
  const table = await freshTable('stream', 20_000);
  const store = await freshStore();
  const sync = await cdcEngine(cdcSpec(table, pg.url, { batchSize: 1000, slot: 'ls_stream' }), store);
  cleanups.push(() => sync.close());
  await untilEqual(store, table);
  const generation = (await store.readState('events'))!.generation;

  await churn(table, 300);
  await untilEqual(store, table, 60_000, () => sync.engine.status());
  // One transaction far larger than a batch: inserts, updates of its own rows, deletes.
  await schema.sql(`BEGIN;
    ${insertSql(table, 30_000, 7)};
    UPDATE ${table} SET amount = 1, ts = ts - interval '1 day' WHERE id % 7 = 0;
    DELETE FROM ${table} WHERE id % 11 = 0;
    COMMIT`);
  // About 42k changes, most of them moving a row to another bucket: minutes on a loaded machine.
  await untilEqual(store, table, 200_000, () => sync.engine.status());
  const state = (await store.readState('events'))!;
  expect(state.generation).toBe(generation);
  expect(decodePosition(state.position!).phase).toBe('stream');
}, 400_000);

test('the slot is confirmed only up to what the store has committed', async () => {
  const table = await freshTable('ack', 100);
  const store = await freshStore();
  let gate: Promise<void> | null = null;
  let open: () => void = () => undefined;
  let held: () => void = () => undefined;
  const holding = new Promise<void>((resolve) => (held = resolve));
  // The store, with applyBatch held while the gate is shut.
  const gated = new Proxy(store, {
    get(target, key, receiver) {
      if (key !== 'applyBatch') {
        const value: unknown = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return async (...args: Parameters<Store['applyBatch']>) => {
        if (gate && args[1].records.length > 0) {
          held();
          await gate;
        }
        return target.applyBatch(...args);
      };
    },
  });
  const sync = await cdcEngine(cdcSpec(table, pg.url, { slot: 'ls_ack' }), gated);
  cleanups.push(() => sync.close());
  await untilEqual(store, table);

  gate = new Promise<void>((resolve) => (open = resolve));
  await schema.sql(insertSql(table, 50, 9));
  const after = (await slotPosition(schema, 'ls_ack')).current;
  await holding;
  // The stream has the rows and the store does not. Every heartbeat sends the server a status
  // update, then samples the slot: after three samples, the source has had every chance to confirm.
  for (let beats = 0; beats < 3; beats++) {
    const before = sync.source.slotStats();
    await until(async () => sync.source.slotStats() !== before, 30_000, 'a heartbeat');
  }
  const held1 = await slotPosition(schema, 'ls_ack');
  expect(held1.confirmed).not.toBeNull();
  expect(held1.confirmed!).toBeLessThan(after);

  open();
  gate = null;
  await untilEqual(store, table);
  // The insert's end, as the store committed it: while the store did not hold the insert, the
  // slot stayed before it. (It may have passed the store's previous position: a keepalive
  // confirmed while nothing was in flight covers the heartbeat messages written in between.)
  const committed = decodePosition((await store.readState('events'))!.position!);
  expect(committed.phase).toBe('stream');
  if (committed.phase !== 'stream') return;
  expect(held1.confirmed!).toBeLessThan(committed.lsn);
  await until(
    async () => ((await slotPosition(schema, 'ls_ack')).confirmed ?? 0n) >= after,
    30_000,
    'the slot to confirm the committed insert',
  );
}, 120_000);

test('a truncate reads the table again; so does a dropped slot', async () => {
  const table = await freshTable('truncate', 2000);
  const store = await freshStore();
  const sync = await cdcEngine(cdcSpec(table, pg.url, { slot: 'ls_truncate' }), store);
  cleanups.push(() => sync.close());
  await untilEqual(store, table);
  const first = (await store.readState('events'))!.generation;

  await schema.sql(`BEGIN; TRUNCATE ${table}; ${insertSql(table, 700, 2)}; COMMIT`);
  await untilEqual(store, table);
  const second = (await store.readState('events'))!.generation;
  expect(second).not.toBe(first);

  // Dropped by hand: the source may take the slot again between the two statements, so repeat.
  await until(
    async () => {
      await schema.sql(
        `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'ls_truncate' AND active_pid IS NOT NULL`,
      );
      const dropped = await schema
        .sql(`SELECT pg_drop_replication_slot('ls_truncate')`)
        .then(() => true)
        .catch(() => false);
      return dropped;
    },
    30_000,
    'the slot to be dropped',
  );
  await schema.sql(insertSql(table, 300, 4));
  await untilEqual(store, table);
  expect((await store.readState('events'))!.generation).not.toBe(second);
}, 120_000);

test('a stream started on a slot that is not there asks for a resync (the slot dropped after the source checked it)', async () => {
  const table = await freshTable('noslot', 0);
  const spec = cdcSpec(table, pg.url);
  if (spec.source.kind !== 'postgres') throw new Error('a postgres dataset is needed');
  await schema.sql(`CREATE PUBLICATION ls_noslot FOR TABLE ${table}`);
  const [schemaName, tableName] = table.split('.');
  const stream = new ChangeStream({
    url: pg.url,
    slot: 'ls_noslot',
    publication: 'ls_noslot',
    schema: schemaName!,
    table: tableName!,
    rows: new CdcRows(spec, spec.source),
    start: { phase: 'stream', lsn: 1n, partial: null },
    highWater: 100,
    onReady: () => undefined,
  });
  try {
    await expect(stream.start()).rejects.toBeInstanceOf(ResyncNeededError);
  } finally {
    await stream.close().catch(() => undefined);
  }
});

test('a restarted upstream: the stream resumes from the committed position, no resync', async () => {
  const table = await freshTable('restart', 3000);
  const store = await freshStore();
  const sync = await cdcEngine(cdcSpec(table, pg.url, { slot: 'ls_restart' }), store);
  cleanups.push(() => sync.close());
  await untilEqual(store, table);
  const generation = (await store.readState('events'))!.generation;
  await pg.restart();
  await churn(table, 200);
  await untilEqual(store, table);
  expect((await store.readState('events'))!.generation).toBe(generation);
}, 120_000);

describe('SIGKILL of the sync worker mid-stream', () => {
  async function startWorker(table: string, prefix: string) {
    const child = fork(join(__dirname, 'cdc-worker.ts'), [], {
      cwd: join(__dirname, '../..'),
      execArgv: ['-r', '@swc-node/register'],
      env: {
        ...process.env,
        LIVESYNC_TABLE: table,
        LIVESYNC_PG_URL: pg.url,
        LIVESYNC_REDIS_URL: REDIS_URL,
        LIVESYNC_PREFIX: prefix,
        LIVESYNC_SLOT: 'ls_kill',
        LIVESYNC_BATCH: '500',
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    children.add(child);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout!.resume();
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const messages: CdcWorkerMessage[] = [];
    child.on('message', (message: CdcWorkerMessage) => messages.push(message));
    const waitFor = (accept: (message: CdcWorkerMessage) => boolean, what: string) =>
      until(
        async () => {
          const failed = messages.find((message) => message.kind === 'error');
          if (failed) throw new Error(`the worker failed: ${JSON.stringify(failed)}\n${stderr}`);
          return messages.some(accept);
        },
        60_000,
        what,
      );
    return {
      waitFor,
      async kill(): Promise<void> {
        child.kill('SIGKILL');
        await exited;
        children.delete(child);
      },
    };
  }

  test('resumes from the committed position: nothing lost, nothing counted twice', async () => {
    const table = await freshTable('kill', 10_000);
    const prefix = uniquePrefix();
    cleanups.push(() => deleteKeys(REDIS_URL, `${prefix}:*`).then(() => undefined));
    const worker = await startWorker(table, prefix);
    await worker.waitFor((message) => message.kind === 'caught-up', 'the snapshot');
    const spec = cdcSpec(table, pg.url, { slot: 'ls_kill', batchSize: 500 });
    const store = await freshStoreAt(prefix);
    await store.register(spec);
    const snapshotted = (await store.readState('events'))!;

    // A 20k-row transaction (40 batches) and small transactions after it; the kill lands inside.
    const writes = (async () => {
      await schema.sql(insertSql(table, 20_000, 3));
      for (let i = 0; i < 20; i++) await churn(table, 20);
    })();
    const target = 10 + Math.floor(Math.random() * 25);
    await worker.waitFor(
      (message) => message.kind === 'batch' && message.batches >= target,
      `batch ${target}`,
    );
    await worker.kill();
    await writes;

    const killed = (await store.readState('events'))!;
    expect(killed.generation).toBe(snapshotted.generation);
    expect(decodePosition(killed.position!).phase).toBe('stream');

    const sync = await cdcEngine(spec, store);
    cleanups.push(() => sync.close());
    await untilEqual(store, table);
    expect((await store.readState('events'))!.generation).toBe(killed.generation);
  }, 180_000);
});

async function freshStoreAt(prefix: string): Promise<RedisStore> {
  const store = await RedisStore.connect(REDIS_URL, prefix);
  cleanups.push(() => store.close());
  return store;
}

describe('prerequisites fail with a message that names what is missing (origin config)', () => {
  async function refusal(url: string, table: string): Promise<SourceError> {
    const spec = cdcSpec(table, url, { slot: 'ls_refused' });
    if (spec.source.kind !== 'postgres') throw new Error('a postgres dataset is needed');
    const source = new PostgresCdcSource(spec, spec.source);
    try {
      const err: unknown = await source.fetch({ after: null, limit: 10 }).then(
        () => null,
        (error: unknown) => error,
      );
      expect(err).toBeInstanceOf(SourceError);
      return err as SourceError;
    } finally {
      await source.close();
    }
  }

  test('wal_level below logical (the shared server has replica)', async () => {
    const shared = new PgSchema(PG_URL);
    await shared.create();
    try {
      const table = await shared.createEvents();
      const err = await refusal(PG_URL, table);
      expect(err.message).toMatch(
        /mode cdc needs wal_level = logical, and the server has wal_level = (replica|minimal)/,
      );
      expect(err.origin).toBe('config');
      expect(err.errorClass).toBe('permanent');
    } finally {
      await shared.drop();
    }
  });

  test('a role without REPLICATION, and one that may not create the publication', async () => {
    const table = await freshTable('refused', 10);
    await schema.sql(`CREATE ROLE ls_plain LOGIN; GRANT USAGE ON SCHEMA ${schema.name} TO ls_plain`);
    await schema.sql(
      `CREATE ROLE ls_replicator LOGIN REPLICATION; GRANT USAGE ON SCHEMA ${schema.name} TO ls_replicator`,
    );
    const as = (role: string) => pg.url.replace('root@', `${role}@`);
    const plain = await refusal(as('ls_plain'), table);
    expect(plain.message).toContain('mode cdc needs the REPLICATION privilege, which role "ls_plain" lacks');
    expect(plain.origin).toBe('config');
    const replicator = await refusal(as('ls_replicator'), table);
    expect(replicator.message).toContain('cannot create publication "ls_refused"');
    expect(replicator.message).toContain('ownership of the table');
    expect(replicator.origin).toBe('config');
  });
});
