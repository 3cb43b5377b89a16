import { fork } from 'node:child_process';
import type { DatasetSpec } from '../src/config/dataset';
import type { Limits } from '../src/config/schema';
import { planMetricsRead, type MetricsQuery } from '../src/query/engine';
import type { GateStats } from '../src/query/gate';
import { planBuckets } from '../src/query/step';
import type { Store } from '../src/store/types';

/**
 * The heaviest requests the limits allow, several at once, while liveness is polled: what a
 * client of `/api/health/live` waits when the service computes as much as it lets itself.
 */

const MIN = 60_000;
const DAY = 86_400_000;

export interface HeavyBody {
  rangeMs: number;
  intervalMs: number;
  queries: MetricsQuery[];
  cells: number;
  points: number;
}

export interface HeavyResult {
  body: HeavyBody & { bytes: number };
  concurrency: number;
  durationS: number;
  heavy: { ok: number; busy: number; other: number };
  liveness: { n: number; p50: number; p99: number; max: number; failed: number };
  rssMb: { baseline: number; peak: number };
  gate: GateStats;
}

/**
 * Fills a request with queries by every dimension (many points), then with queries that
 * read every group into one series (many cells, few points), as long as the budget holds;
 * for two shapes of range, and keeps the one closer to both limits. Costs come from the
 * engine's own rule (planMetricsRead), so this is the heaviest body the service accepts.
 */
export async function heaviestAllowedBody(
  store: Store,
  spec: DatasetSpec,
  limits: Limits,
  now = Date.now(),
): Promise<HeavyBody> {
  const all = await store.readGroups(spec.name, (1 << spec.dimensions.length) - 1);
  const filters = Object.fromEntries(
    spec.dimensions.map((d, i) => [d, [...new Set(all.flatMap((g) => (g[i] === null ? [] : [g[i]!])))]]),
  );
  const wide: MetricsQuery = {
    refId: '',
    dataset: spec.name,
    aggregations: ['count'],
    groupBy: spec.dimensions,
  };
  const deep: MetricsQuery = { refId: '', dataset: spec.name, aggregations: ['count'], filters };
  let best: HeavyBody | null = null;
  for (const [rangeMs, intervalMs] of [
    [DAY, MIN],
    [7 * DAY, 10 * MIN],
  ] as const) {
    const plan = planBuckets(spec, now - rangeMs, now, intervalMs, 100_000);
    const cost = async (q: MetricsQuery) => (await planMetricsRead(store, spec, q, plan, 'q')).cost;
    const body: HeavyBody = { rangeMs, intervalMs, queries: [], cells: 0, points: 0 };
    for (const query of [wide, deep]) {
      const c = await cost(query);
      while (
        body.queries.length < 32 &&
        body.cells + c.cells <= limits.maxCellsPerRequest &&
        body.points + c.points <= limits.maxPointsPerRequest
      ) {
        body.queries.push({ ...query, refId: `Q${body.queries.length}` });
        body.cells += c.cells;
        body.points += c.points;
      }
    }
    const load = (b: HeavyBody) =>
      b.cells / limits.maxCellsPerRequest + b.points / limits.maxPointsPerRequest;
    if (!best || load(body) > load(best)) best = body;
  }
  return best!;
}

interface LoadOptions {
  baseUrl: string;
  body: HeavyBody;
  concurrency: number;
  durationS: number;
}

interface LoadResult {
  heavy: { ok: number; busy: number; other: number; bytes: number };
  liveness: number[];
  failed: number;
}

/** Runs in a child process: a load generator sharing the service's event loop would measure itself. */
async function load({ baseUrl, body, concurrency, durationS }: LoadOptions): Promise<LoadResult> {
  const deadline = Date.now() + durationS * 1000;
  const heavy = { ok: 0, busy: 0, other: 0, bytes: 0 };
  let shift = 0;
  const worker = async () => {
    while (Date.now() < deadline) {
      // Each request a different range, so none joins another's computation.
      const to = Date.now() - shift++ * body.intervalMs;
      const response = await fetch(`${baseUrl}/api/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-cache-skip': 'true' },
        body: JSON.stringify({
          range: { from: to - body.rangeMs, to },
          intervalMs: body.intervalMs,
          maxDataPoints: 100_000,
          queries: body.queries,
        }),
      });
      const bytes = (await response.arrayBuffer()).byteLength;
      if (response.status === 200) {
        heavy.ok++;
        heavy.bytes = Math.max(heavy.bytes, bytes);
      } else if (response.status === 503) heavy.busy++;
      else heavy.other++;
    }
  };
  const liveness: number[] = [];
  let failed = 0;
  const poll = async () => {
    while (Date.now() < deadline) {
      const started = performance.now();
      const response = await fetch(`${baseUrl}/api/health/live`);
      await response.arrayBuffer();
      liveness.push(performance.now() - started);
      if (response.status !== 200) failed++;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  await Promise.all([poll(), ...Array.from({ length: concurrency }, worker)]);
  return { heavy, liveness, failed };
}

if (process.env.LIVESYNC_BENCH_HEAVY === '1' && process.send) {
  process.once('message', (options) => {
    void load(options as LoadOptions).then((result) => process.send!(result));
  });
}

function inChild(options: LoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, [], {
      execArgv: ['-r', '@swc-node/register'],
      env: { ...process.env, LIVESYNC_BENCH_HEAVY: '1' },
    });
    child.once('message', (result) => {
      resolve(result as LoadResult);
      child.kill();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code) reject(new Error(`heavy load generator exited with ${code}`));
    });
    child.send(options);
  });
}

/** `concurrency` heaviest allowed requests kept in flight for `durationS`, liveness polled every 10 ms. */
export async function heavyScenario(options: {
  baseUrl: string;
  store: Store;
  spec: DatasetSpec;
  limits: Limits;
  gate: () => GateStats;
  durationS: number;
  concurrency?: number;
}): Promise<HeavyResult> {
  const concurrency = options.concurrency ?? 6;
  const body = await heaviestAllowedBody(options.store, options.spec, options.limits);
  globalThis.gc?.();
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 25);
  let result: LoadResult;
  try {
    result = await inChild({ baseUrl: options.baseUrl, body, concurrency, durationS: options.durationS });
  } finally {
    clearInterval(sampler);
  }
  const sorted = [...result.liveness].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
  const { bytes, ...heavy } = result.heavy;
  return {
    body: { ...body, bytes },
    concurrency,
    durationS: options.durationS,
    heavy,
    liveness: {
      n: sorted.length,
      p50: at(0.5),
      p99: at(0.99),
      max: sorted.at(-1) ?? 0,
      failed: result.failed,
    },
    rssMb: { baseline: baseline / 2 ** 20, peak: peak / 2 ** 20 },
    gate: options.gate(),
  };
}
