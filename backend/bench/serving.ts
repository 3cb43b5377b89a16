import { fork } from 'node:child_process';
import autocannon, { type Request } from 'autocannon';
import type { Pool } from 'pg';

/** One panel as a Grafana viewer has it: a relative range, an interval, a query and its SQL twin. */
export interface Panel {
  name: string;
  rangeMs: number;
  intervalMs: number;
  query: Record<string, unknown>;
  /** The same aggregation as Grafana's PostgreSQL data source would run it: $1 = from, $2 = to. */
  sql: string;
}

export interface Run {
  requests: number;
  throughput: number;
  p50: number;
  p99: number;
  mean: number;
  errors: number;
  non2xx: number;
  responseHitRatio: number;
}

/** The replay flat out (the fields of `Run`), the same replay paced, and the PostgreSQL baseline. */
export interface ServingResult extends Run {
  /** The same replay paced at `pacedRate` requests/s: latency when the service is not saturated. */
  paced: Run & { rate: number };
  httpNotModifiedRatio: number;
  baseline: Pick<Run, 'requests' | 'throughput' | 'p50' | 'p99' | 'mean'>;
}

const REFRESH_MS = 10_000;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

async function cacheCounters(baseUrl: string, headers: Record<string, string>): Promise<Map<string, number>> {
  const text = await (await fetch(`${baseUrl}/metrics`, { headers })).text();
  const out = new Map<string, number>();
  for (const match of text.matchAll(
    /^livesync_cache_requests_total\{layer="(\w+)",result="(\w+)"\} (\d+)/gm,
  )) {
    out.set(`${match[1]}:${match[2]}`, Number(match[3]));
  }
  return out;
}

export interface LoadOptions {
  baseUrl: string;
  auth: Record<string, string>;
  dataset: string;
  panels: Panel[];
  durationS: number;
  connections: number;
  viewers: number;
  overallRate?: number;
}

/** The replay itself: run in a child process (see `inChild`). */
async function replay(options: LoadOptions): Promise<autocannon.Result> {
  const { baseUrl, auth, dataset, panels, viewers, connections } = options;
  const viewerOffsets = Array.from({ length: viewers }, (_, v) => Math.floor((v * REFRESH_MS) / viewers));
  const body = (viewer: number, panel: Panel) => {
    // The viewer's dashboard was last refreshed at its own 10 s tick: `now` as Grafana sends it.
    const offset = viewerOffsets[viewer]!;
    const now = Math.floor((Date.now() - offset) / REFRESH_MS) * REFRESH_MS + offset;
    return JSON.stringify({
      range: { from: now - panel.rangeMs, to: now },
      intervalMs: panel.intervalMs,
      maxDataPoints: 1500,
      queries: [{ refId: 'A', dataset, ...panel.query }],
    });
  };
  const requests = viewerOffsets.flatMap((_, viewer) =>
    panels.map((panel) => ({
      method: 'POST' as const,
      path: '/api/query',
      headers: { 'content-type': 'application/json', ...auth },
      setupRequest: (request: Request): Request => ({ ...request, body: body(viewer, panel) }),
    })),
  );

  return autocannon({
    url: baseUrl,
    connections,
    duration: options.durationS,
    requests,
    ...(options.overallRate ? { overallRate: options.overallRate } : {}),
  });
}

/** One request, the same every time, sent flat out (the panel scenario, bench/panel.ts). */
export interface FixedLoad {
  url: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  durationS: number;
  connections: number;
}

function hammer(options: FixedLoad): Promise<autocannon.Result> {
  return autocannon({
    url: `${options.url}${options.path}`,
    connections: options.connections,
    duration: options.durationS,
    method: 'POST',
    headers: options.headers,
    body: options.body,
  });
}

export function inChild(options: LoadOptions | FixedLoad): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, [], {
      execArgv: ['-r', '@swc-node/register'],
      env: { ...process.env, LIVESYNC_BENCH_LOAD: '1' },
    });
    child.once('message', (result) => {
      resolve(result as autocannon.Result);
      child.kill();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code) reject(new Error(`load generator exited with ${code}`));
    });
    child.send(options);
  });
}

if (process.env.LIVESYNC_BENCH_LOAD === '1' && process.send) {
  process.once('message', (options) => {
    const load = options as LoadOptions | FixedLoad;
    void ('panels' in load ? replay(load) : hammer(load)).then((result) => process.send!(result));
  });
}

/**
 * 10 viewers × `panels`, each viewer refreshing every 10 s from its own offset, replayed by
 * 50 concurrent clients for `durationS` while the dataset keeps syncing; then the same
 * panels' SQL straight against PostgreSQL with the same concurrency, for the baseline.
 */
export async function servingScenario(options: {
  baseUrl: string;
  apiKey?: string;
  dataset: string;
  panels: Panel[];
  pool: Pool;
  durationS: number;
  connections?: number;
  viewers?: number;
  /** Requests/s of the paced run. */
  pacedRate?: number;
}): Promise<ServingResult> {
  const { baseUrl, panels, dataset } = options;
  const viewers = options.viewers ?? 10;
  const connections = options.connections ?? 50;
  const auth: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  const drive = async (overallRate?: number): Promise<Run & { httpNotModifiedRatio: number }> => {
    const before = await cacheCounters(baseUrl, auth);
    // The load comes from another process: a load generator sharing the service's event loop
    // would measure itself.
    const result = await inChild({
      baseUrl,
      auth,
      dataset,
      panels,
      durationS: options.durationS,
      connections,
      viewers,
      ...(overallRate ? { overallRate } : {}),
    });
    const after = await cacheCounters(baseUrl, auth);
    const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
    const responseLookups = delta('response:hit') + delta('response:miss') + delta('response:bypass');
    const httpLookups = delta('http:miss') + delta('http:not_modified') + delta('http:bypass');
    return {
      requests: result.requests.total,
      throughput: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      mean: result.latency.average,
      errors: result.errors + result.timeouts,
      non2xx: result.non2xx,
      responseHitRatio: responseLookups > 0 ? delta('response:hit') / responseLookups : 0,
      httpNotModifiedRatio: httpLookups > 0 ? delta('http:not_modified') / httpLookups : 0,
    };
  };
  const saturated = await drive();
  const pacedRate = options.pacedRate ?? 300;
  const paced = { ...(await drive(pacedRate)), rate: pacedRate };

  // The baseline: the same panels straight against PostgreSQL, as many at once as the pool allows.
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + options.durationS * 1000;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(connections, 10) }, async () => {
      while (performance.now() < deadline) {
        const panel = panels[next++ % panels.length]!;
        const now = Date.now();
        const t = performance.now();
        await options.pool.query(panel.sql, [new Date(now - panel.rangeMs), new Date(now)]);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);

  return {
    ...saturated,
    paced,
    baseline: {
      requests: latencies.length,
      throughput: latencies.length / elapsedS,
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      mean: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
    },
  };
}
