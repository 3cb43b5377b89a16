/**
 * Issue 10: Redis is never blocked. On a throwaway redis-server that logs every command
 * slower than 10 ms (SLOWLOG), a 4-dimension dataset is backfilled with about 230 records per
 * base bucket, then 5,000 random updates (metric changes, moves across buckets, hours and
 * groups, deletes and undeletes) arrive in one batch; then, while the largest batch of all
 * (20,000 changes all over the range) is applied, another process PINGs the server.
 *
 * Timing on a shared 2-core machine: a command that runs 1 ms can be logged at 10 ms when the
 * server is descheduled meanwhile, so the SLOWLOG part fails only past 50 ms, five times the
 * goal and still far below what one script per batch took (hundreds of ms for 5,000 rows);
 * the exact 10 ms grade is the benchmark's (npm run bench), which reports the slowest entry.
 * The server and the PINGing process run at a raised priority where that is allowed, so that
 * what they measure is Redis being busy with our commands more than the machine being busy.
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { CELL, DAY_MS } from '../../src/config/dataset';
import { RedisStore } from '../../src/store/redis';
import type { PingerMessage } from './pinger';
import { registerLeased } from '../helpers';
import { ThrowawayRedis } from './support';
import { WIDE_PER_BUCKET, WideData, wideSpec } from './wide';

const T0 = Date.UTC(2026, 0, 5);
const BACKFILL = 240 * WIDE_PER_BUCKET;
const BATCH = 5000;
const UPDATES = 5000;
const LARGEST = 20_000;
/** Generous bounds for a busy machine (see above): the goals are 10 ms and 50 ms. */
const SLOWEST_COMMAND_MS = 50;
const SLOWEST_PING_MS = 50;

const server = new ThrowawayRedis(['--slowlog-log-slower-than', '10000', '--slowlog-max-len', '10000'], -10);
const spec = wideSpec();
const data = new WideData(10, T0);
let store: RedisStore;
let generation: string;

beforeAll(async () => {
  await server.start();
  store = await RedisStore.connect(server.url, 'blocked');
  await registerLeased(store, spec);
  generation = (await store.resetDataset(spec.name)).generation;
});

afterAll(async () => {
  await store?.close();
  await server.stop();
});

async function apply(records: Parameters<RedisStore['applyBatch']>[1]['records']): Promise<void> {
  const result = await store.applyBatch(spec.name, { generation, records, position: null, cutoffMs: 0 });
  expect(result.applied).toBe(true);
}

/** SLOWLOG entries since the last call, as [duration ms, command]. */
async function slowlog(): Promise<[number, string][]> {
  const entries = (await store.redis.slowlog('GET', 10_000)) as [number, number, number, string[]][];
  await store.redis.slowlog('RESET');
  return entries.map(([, , micros, args]) => [micros / 1000, args.slice(0, 2).join(' ')]);
}

/** Counts held, by the day tier's total cells, against the records that should be held. */
async function expectCounts(): Promise<void> {
  const live = data.live();
  const dayTier = spec.layout.tiers[2]!;
  const [total] = await store.readRollups(spec.name, {
    tierMs: dayTier,
    projection: 0,
    from: Math.floor(T0 / dayTier) * dayTier,
    to: T0 + 2 * DAY_MS,
  });
  let count = 0;
  for (let i = 0; i < total!.cells.length; i += spec.layout.fieldCount)
    count += total!.cells[i + CELL.count]!;
  expect(count).toBe(live.length);
  expect((await store.readState(spec.name))!.records).toBe(live.length);
}

it('runs no command for long: a backfill and 5,000 random updates on a 4-dimension dataset', async () => {
  await slowlog();
  for (let n = 0; n < BACKFILL; n += BATCH) await apply(data.inserts(Math.min(BATCH, BACKFILL - n)));
  await apply(data.updates(UPDATES));
  const slow = (await slowlog()).filter(([ms]) => ms >= SLOWEST_COMMAND_MS);
  expect(slow).toEqual([]);
  await expectCounts();
}, 300_000);

it('answers a PING from another process within 50 ms while the largest batch applies', async () => {
  const pinger = fork(join(__dirname, 'pinger.ts'), [], {
    cwd: join(__dirname, '../..'),
    execArgv: ['-r', '@swc-node/register'],
    env: { ...process.env, LIVESYNC_REDIS_URL: server.url },
  });
  try {
    const messages: PingerMessage[] = [];
    const next = () =>
      new Promise<PingerMessage>((resolve, reject) => {
        pinger.once('message', (m: PingerMessage) => resolve(m));
        pinger.once('exit', (code) => reject(new Error(`the pinger exited (${code})`)));
      });
    messages.push(await next());
    expect(messages[0]).toEqual({ kind: 'ready' });
    const largest = [...data.updates(LARGEST / 2), ...data.inserts(LARGEST / 2)];
    await apply(largest);
    const result = next();
    pinger.send('stop');
    const measured = await result;
    if (measured.kind !== 'result') throw new Error('no result from the pinger');
    // The pinger kept asking the whole time: each answer came between two pieces.
    expect(measured.pings).toBeGreaterThan(100);
    expect(measured.maxMs).toBeLessThan(SLOWEST_PING_MS);
    await expectCounts();
  } finally {
    pinger.kill();
  }
}, 300_000);
