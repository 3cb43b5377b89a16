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
 *
 * The read path is held to sizes instead of times: every command the heaviest request the
 * limits allow sends is logged (slowlog-log-slower-than 0) and none may read more than its
 * bound (READ_BOUNDS, a rollup block), which keeps each to microseconds on any machine.
 */
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { heaviestAllowedBody } from '../../bench/heavy';
import { CELL, DAY_MS } from '../../src/config/dataset';
import { resolveLimits } from '../../src/query/budget';
import { planMetricsRead, readMetrics } from '../../src/query/engine';
import { planBuckets } from '../../src/query/step';
import { READ_BOUNDS, RedisStore } from '../../src/store/redis';
import { DatasetKeys } from '../../src/store/redis-keys';
import { STAMP_MAX_BLOCKS } from '../../src/store/types';
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

/** The SHA1 that EVALSHA names a script of the store by. */
function scriptSha(name: string): string {
  const text = readFileSync(join(__dirname, '../../src/store/lua', name), 'utf8');
  return createHash('sha1').update(text).digest('hex');
}

/** Every command the server ran since the last RESET, logged whatever its duration, as its arguments (SLOWLOG shortens them). */
async function everyCommand(run: () => Promise<void>): Promise<string[][]> {
  await store.redis.config('SET', 'slowlog-log-slower-than', '0', 'slowlog-max-len', '1000000');
  await store.redis.slowlog('RESET');
  try {
    await run();
  } finally {
    await store.redis.config('SET', 'slowlog-log-slower-than', '10000', 'slowlog-max-len', '10000');
  }
  const entries = (await store.redis.slowlog('GET', -1)) as [number, number, number, string[]][];
  await store.redis.slowlog('RESET');
  return entries.map(([, , , args]) => args).filter(([name]) => !/^(slowlog|config)$/i.test(name!));
}

/** How many arguments a logged command had: SLOWLOG keeps 31 and says how many more there were. */
function argumentCount(args: string[]): number {
  const more = /^\.\.\. \((\d+) more arguments\)$/.exec(args[args.length - 1] ?? '');
  return more ? args.length - 1 + Number(more[1]) : args.length;
}

it('reads the heaviest request the limits allow in commands that each read at most one bound', async () => {
  const end = T0 + DAY_MS;
  const body = await heaviestAllowedBody(store, spec, resolveLimits(), end);
  expect(body.cells).toBeGreaterThan(100_000);
  const scripts = new Map(
    ['blocks.lua', 'fields.lua', 'buckets.lua'].map((name) => [scriptSha(name), name] as const),
  );
  const commands = await everyCommand(async () => {
    const plan = planBuckets(spec, end - body.rangeMs, end, body.intervalMs, 100_000);
    await store.dataStamp(spec.name, plan.from, plan.to);
    for (const query of body.queries)
      await readMetrics(store, await planMetricsRead(store, spec, query, plan, query.refId));
    // The reconciler's page of stored records, as large as one may be asked for.
    await store.scanRecords(spec.name, '0', 100_000);
  });
  // Rollup blocks, read one HGETALL each (blocks.lua's HGETALLs of hashes of records are logged too).
  const records = new DatasetKeys('blocked', spec.name).records('');
  const blocks = [
    ...new Set(
      commands.filter(([n, key]) => /^hgetall$/i.test(n!) && !key!.startsWith(records)).map((c) => c[1]!),
    ),
  ];
  const sizes = await Promise.all(blocks.map((key) => store.redis.hlen(key)));
  const largest = (name: string) =>
    Math.max(0, ...commands.filter(([n]) => n!.toLowerCase() === name).map(argumentCount));
  const scriptArguments = (name: string) =>
    Math.max(
      0,
      ...commands
        .filter(([n, sha]) => /^evalsha$/i.test(n!) && scripts.get(sha!) === name)
        .map(argumentCount),
    );
  // Rollup blocks are read one HGETALL each: at most blockBuckets cells.
  expect(blocks.length).toBeGreaterThan(1000);
  expect(Math.max(...sizes)).toBeLessThanOrEqual(spec.layout.blockBuckets);
  // No script reads rollups: every reply a script reads is copied into Lua and out again.
  expect(commands.filter(([n, sha]) => /^evalsha$/i.test(n!) && !scripts.has(sha!))).toEqual([]);
  const readByBlocksLua = commands
    .filter(([n, sha]) => /^evalsha$/i.test(n!) && scripts.get(sha!) === 'blocks.lua')
    .flatMap((args) => args.slice(4).filter((key) => !key.startsWith('... (')));
  expect(readByBlocksLua.filter((key) => !key.startsWith(records))).toEqual([]);
  // EVALSHA sha numkeys state ARGV…: at most so many hashes of records, ids or bucket indexes.
  expect(scriptArguments('blocks.lua')).toBeGreaterThan(4);
  expect(scriptArguments('blocks.lua')).toBeLessThanOrEqual(4 + READ_BOUNDS.recordHashesPerCall);
  expect(scriptArguments('fields.lua')).toBeLessThanOrEqual(4 + 2 * READ_BOUNDS.recordsPerCall);
  expect(scriptArguments('buckets.lua')).toBeLessThanOrEqual(5 + READ_BOUNDS.perCommand);
  expect(largest('hmget')).toBeLessThanOrEqual(2 + STAMP_MAX_BLOCKS);
  for (const args of commands.filter(([n]) => /^sscan$/i.test(n!)))
    expect(Number(args[args.length - 1])).toBeLessThanOrEqual(READ_BOUNDS.perCommand);
}, 300_000);
