/**
 * A quick look at the store's memory and write speed without PostgreSQL: records shaped like
 * the bench's events table at 1M rows (generated here, same distributions, as many records per
 * base bucket: fewer rows span fewer days) applied straight
 * through RedisStore.applyBatch into a throwaway redis-server, then used_memory per record and
 * MEMORY USAGE by key family. For iterating on the layout; `npm run bench` is the graded run.
 *
 *   MEM_ROWS=200000 [MEM_WIDE=1] node -r @swc-node/register bench/memory.ts
 */
import { RedisStore } from '../src/store/redis';
import type { SourceRecord } from '../src/sources/types';
import { prng } from '../test/helpers';
import { eventsSpec, ThrowawayRedis } from '../test/integration/support';
import { WIDE_PER_BUCKET, WideData, wideSpec } from '../test/integration/wide';
import { kindsOf, memoryByFamily, takeSlowlog } from './redis-measure';

const ROWS = Number(process.env.MEM_ROWS ?? 200_000);
/** MEM_WIDE=1: the 4-dimension dataset of the issue 10 workload, event times at random over 30 days. */
const WIDE = process.env.MEM_WIDE === '1';
const BATCH = 5000;
/** The bench's 1M rows span 30 days: fewer rows span fewer days, so base buckets hold as many records. */
const SPAN_MS = Math.round(30 * 86_400_000 * Math.min(1, ROWS / 1_000_000));
const COUNTRIES = 'US IN DE BR GB FR JP MX CA ID NG IT ES KR AU TR PL NL SE ZA'.split(' ');

/** The bench's rows scaled to ROWS: the same 30 days, so records per base bucket follow ROWS. */
function rows(from: number, to: number, end: number, random: () => number): SourceRecord[] {
  const out: SourceRecord[] = [];
  for (let i = from; i < to; i++) {
    const r = random();
    const time = Math.min(end - 1000, end - SPAN_MS + (i / ROWS) * SPAN_MS + (random() - 0.5) * 600_000);
    out.push({
      id: String(i + 1),
      time: Math.floor(time),
      cursor: String(i + 1),
      deleted: false,
      dims: [
        COUNTRIES[Math.floor(20 * Math.pow(random(), 2.2))]!,
        r < 0.6 ? 'mobile' : r < 0.9 ? 'desktop' : 'tablet',
      ],
      metrics: [
        random() < 0.05 ? null : Math.round(random() * 50_000) / 100,
        Math.floor(50 + random() * 2000),
      ],
      distinct: [`u${Math.floor(Math.pow(random(), 2) * 200_000)}`],
    });
  }
  return out;
}

async function main(): Promise<void> {
  const redis = new ThrowawayRedis(['--slowlog-log-slower-than', '10000']);
  await redis.start();
  const store = await RedisStore.connect(redis.url, 'livesync');
  try {
    const spec = WIDE ? wideSpec('events') : eventsSpec('events', { retention: '3650d' });
    const wide = new WideData(7, Date.UTC(2026, 9, 28), WIDE_PER_BUCKET, 30 * 86_400_000);
    await store.register(spec);
    // Writes of the sync path are fenced by the dataset's lease: take it, as the sync engine does.
    await store.acquireLease(spec.name, 'bench', 3_600_000);
    const { generation } = await store.resetDataset(spec.name);
    const before = Number(/used_memory:(\d+)/.exec(await store.redis.info('memory'))?.[1] ?? 0);
    await takeSlowlog(store.redis);
    const random = prng(1);
    const end = Date.UTC(2026, 10, 27);
    const started = performance.now();
    for (let n = 0; n < ROWS; n += BATCH) {
      const result = await store.applyBatch(spec.name, {
        generation,
        records: WIDE
          ? wide.inserts(Math.min(BATCH, ROWS - n))
          : rows(n, Math.min(ROWS, n + BATCH), end, random),
        position: null,
        cutoffMs: 0,
      });
      if (!result.applied) throw new Error(`batch not applied: ${result.reason}`);
    }
    const ms = performance.now() - started;
    const after = Number(/used_memory:(\d+)/.exec(await store.redis.info('memory'))?.[1] ?? 0);
    const slow = await takeSlowlog(store.redis);
    process.stdout.write(
      `${ROWS} records in ${(ms / 1000).toFixed(1)} s: ${Math.round((ROWS / ms) * 1000)} records/s; ` +
        `${((after - before) / ROWS).toFixed(1)} bytes/record; slowlog ${slow.length} entries` +
        (slow.length > 0 ? `, slowest ${Math.max(...slow.map((s) => s.ms))} ms ${slow[0]!.command}` : '') +
        '\n',
    );
    const families = await memoryByFamily(store.redis, `livesync:{${spec.name}}:`);
    for (const f of families) {
      process.stdout.write(
        `${f.family.padEnd(20)} ${String(f.keys).padStart(9)} ${(f.bytes / ROWS).toFixed(1)}\n`,
      );
    }
    for (const k of kindsOf(families)) process.stdout.write(`${k.kind}: ${(k.bytes / ROWS).toFixed(1)}\n`);
  } finally {
    await store.close();
    await redis.stop();
  }
}

void main();
