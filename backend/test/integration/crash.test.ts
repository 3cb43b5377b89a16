/**
 * Issue 2, crash consistency: a real sync in a child process is SIGKILLed mid-backfill, then a
 * new engine resumes on the same Redis prefix. Nothing may be lost or counted twice.
 * Issue 10: batches are applied in pieces; the kill also lands between two pieces of one
 * batch (the worker stops there and is killed), and the next engine finishes that batch.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { RedisStore } from '../../src/store/redis';
import { DatasetKeys } from '../../src/store/redis-keys';
import { deleteKeys, REDIS_URL, uniquePrefix } from '../helpers';
import {
  COUNTRY_SQL,
  DAY,
  DEVICE_SQL,
  eventsSpec,
  expectHourlyEqual,
  pgEngine,
  PgSchema,
  sqlHourly,
  storeHourly,
} from './support';
import type { WorkerMessage } from './sync-worker';

const T0 = Date.UTC(2026, 0, 5);
const ROWS = 100_000;
const BATCH = 500;
const RANGE = { from: T0 - DAY, to: T0 + 4 * DAY };

const schema = new PgSchema();
const children = new Set<ChildProcess>();
const prefixes: string[] = [];
let table: string;

beforeAll(async () => {
  await schema.create();
  table = await schema.createEvents();
  // Appended roughly in event-time order, as event tables are, with some jitter.
  await schema.sql(
    `INSERT INTO ${table} (ts, country, device, amount, duration_ms, user_id)
     SELECT to_timestamp(${T0 / 1000}) + (i::float8 / ${ROWS}) * interval '2 days' + random() * interval '20 minutes',
            ${COUNTRY_SQL}, ${DEVICE_SQL},
            CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * 1000)::numeric, 2) END,
            (random() * 5000)::int, 'u' || floor(random() * 5000)
     FROM generate_series(1, ${ROWS}) i`,
  );
  await schema.sql(`ANALYZE ${table}`);
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const prefix of prefixes) await deleteKeys(REDIS_URL, `${prefix}:*`);
  await schema.drop();
});

/** Where to kill the worker: after `batches` committed batches, or at its `step`-th step inside a batch. */
type KillPoint = { batches: number } | { step: number; pieceCost: number };

/** Starts the worker and SIGKILLs it as soon as it reaches the kill point. */
async function syncAndKill(prefix: string, at: KillPoint): Promise<{ reported: number }> {
  const child = fork(join(__dirname, 'sync-worker.ts'), [], {
    cwd: join(__dirname, '../..'),
    execArgv: ['-r', '@swc-node/register'],
    env: {
      ...process.env,
      LIVESYNC_TABLE: table,
      LIVESYNC_REDIS_URL: REDIS_URL,
      LIVESYNC_PREFIX: prefix,
      LIVESYNC_BATCH: String(BATCH),
      ...('step' in at
        ? { LIVESYNC_PIECE_COST: String(at.pieceCost), LIVESYNC_PAUSE_AT: String(at.step) }
        : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.resume();
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(signal ?? code);
    }),
  );
  const reported = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no kill point within 60 s\n${stderr}`)), 60_000);
    const kill = (batches: number) => {
      child.kill('SIGKILL');
      clearTimeout(timer);
      resolve(batches);
    };
    child.on('message', (message: WorkerMessage) => {
      if (message.kind === 'paused') kill(message.batches);
      else if (message.kind === 'batch' && 'batches' in at && message.batches >= at.batches)
        kill(message.batches);
      else if (message.kind !== 'batch') {
        clearTimeout(timer);
        reject(new Error(`the worker finished before the kill point: ${JSON.stringify(message)}\n${stderr}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the worker exited (${code}) before the kill point\n${stderr}`));
    });
  });
  expect(await exited).toBe('SIGKILL');
  return { reported };
}

/**
 * Kill points across the backfill's 200 batches: early, middle and late, each somewhere
 * random; and twice inside a batch cut into small pieces (about thirty per batch), at a random
 * step of one of its first hundred batches.
 */
const PIECE_COST = 400;
const killPoints: [string, KillPoint, boolean][] = [
  ['early', { batches: 2 + Math.floor(Math.random() * 20) }, false],
  ['middle', { batches: 70 + Math.floor(Math.random() * 40) }, true],
  ['late', { batches: 150 + Math.floor(Math.random() * 35) }, false],
  [
    'between two pieces of a batch',
    { step: 1 + Math.floor(Math.random() * 4000), pieceCost: PIECE_COST },
    false,
  ],
  [
    'between two pieces of a batch',
    { step: 1 + Math.floor(Math.random() * 4000), pieceCost: PIECE_COST },
    true,
  ],
];

it.each(killPoints)(
  'SIGKILL %s (%j), resume in-process: totals equal SQL (changes meanwhile: %s)',
  async (_when, at, changeMeanwhile) => {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    const spec = eventsSpec(table, { batchSize: BATCH });
    const { reported } = await syncAndKill(prefix, at);

    // The kill left a partial copy: the batches it reported, perhaps a few more, never all.
    const store = await RedisStore.connect(REDIS_URL, prefix);
    try {
      await store.register(spec);
      const killed = (await store.readState('events'))!;
      expect(killed.version).toBeGreaterThanOrEqual(reported);
      expect(killed.records).toBeLessThan(ROWS);
      if ('step' in at) {
        // Killed inside a batch: its journal is open, and part of it may already be applied.
        expect(await store.redis.hget(new DatasetKeys(prefix, 'events').state, 'journal')).not.toBeNull();
      } else {
        expect(killed.position).not.toBeNull();
        expect(killed.records).toBeGreaterThan(0);
      }

      if (changeMeanwhile) {
        await schema.sql(`
          SELECT setseed(0.3);
          UPDATE ${table} SET amount = round((random() * 1000)::numeric, 2) WHERE id IN (SELECT id FROM ${table} ORDER BY random() LIMIT 2000);
          UPDATE ${table} SET ts = ts + interval '3 hours' WHERE id IN (SELECT id FROM ${table} ORDER BY random() LIMIT 500);
          UPDATE ${table} SET deleted_at = now() WHERE id IN (SELECT id FROM ${table} ORDER BY random() LIMIT 500);`);
      }

      const sync = pgEngine(spec, store);
      try {
        await sync.syncOnce();
      } finally {
        await sync.close();
      }
      const resumed = (await store.readState('events'))!;
      // Resumed where the killed process had committed, not started over.
      expect(resumed.generation).toBe(killed.generation);
      const [{ live }] = (await schema.sql<{ live: string }>(
        `SELECT count(*)::text AS live FROM ${table} WHERE deleted_at IS NULL`,
      )) as [{ live: string }];
      expect(resumed.records).toBe(Number(live));
      expectHourlyEqual(await storeHourly(store, spec, RANGE), await sqlHourly(schema, table));
    } finally {
      await store.close();
    }
  },
);
