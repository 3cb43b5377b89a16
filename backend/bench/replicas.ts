/**
 * Serving throughput with 1, 2 and 3 service processes (src/main.ts, as deployed) on one Redis,
 * behind a simple round-robin proxy, replaying the serving scenario's viewers (bench/serving.ts)
 * against each set. The replicas share the synced data and the response cache in Redis; only
 * the holder of the dataset's lease syncs (here: the benchmark's own engine, so they all serve).
 */
import { createServer, request, Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ServiceProcess } from '../test/integration/service-process';
import { inChild, type Panel } from './serving';

export interface ReplicasRun {
  replicas: number;
  throughput: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

/** A round-robin HTTP proxy over `targets`: each request goes to the next one. */
async function roundRobin(targets: ServiceProcess[]): Promise<{ url: string; server: Server }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  let next = 0;
  const server = createServer((incoming, outgoing) => {
    const target = targets[next++ % targets.length]!;
    const forward = request(
      {
        host: '127.0.0.1',
        port: target.port,
        path: incoming.url,
        method: incoming.method,
        headers: incoming.headers,
        agent,
      },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forward.on('error', () => {
      outgoing.statusCode = 502;
      outgoing.end();
    });
    incoming.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

export async function replicasScenario(options: {
  redisUrl: string;
  prefix: string;
  /** The dataset as the configuration file declares it (the benchmark's own engine holds its lease). */
  dataset: { name: string };
  panels: Panel[];
  durationS: number;
  counts?: number[];
}): Promise<ReplicasRun[]> {
  const counts = options.counts ?? [1, 2, 3];
  const replicas = Array.from(
    { length: Math.max(...counts) },
    () =>
      new ServiceProcess({
        server: { rateLimitPerMinute: 0, limits: { maxQueuedQueries: 1000 } },
        redis: { url: options.redisUrl, prefix: options.prefix },
        datasets: [options.dataset],
      }),
  );
  const runs: ReplicasRun[] = [];
  try {
    await Promise.all(replicas.map((r) => r.start()));
    for (const n of counts) {
      const proxy = await roundRobin(replicas.slice(0, n));
      try {
        const result = await inChild({
          baseUrl: proxy.url,
          auth: {},
          dataset: options.dataset.name,
          panels: options.panels,
          durationS: options.durationS,
          connections: 50,
          viewers: 10,
        });
        runs.push({
          replicas: n,
          throughput: result.requests.average,
          p50: result.latency.p50,
          p99: result.latency.p99,
          errors: result.errors,
          non2xx: result.non2xx,
        });
      } finally {
        await new Promise((resolve) => proxy.server.close(resolve));
      }
    }
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
  }
  return runs;
}

/** The report's section: throughput by replicas, and the speed-up over one. */
export function renderReplicas(runs: ReplicasRun[], cores: number, durationS: number): string {
  const one = runs.find((r) => r.replicas === 1)?.throughput ?? 0;
  const rows = runs.map(
    (r) =>
      `| ${r.replicas} | ${Math.round(r.throughput)} | ${one > 0 ? (r.throughput / one).toFixed(2) : '–'}× | ${r.p50} | ${r.p99} | ${r.errors + r.non2xx} |`,
  );
  return [
    '## Serving with several replicas',
    '',
    `The serving scenario's viewers (${durationS} s per set) through a round-robin proxy to 1, 2 and 3 service processes on one Redis; the proxy, the load generator, the replicas, Redis and PostgreSQL share the machine's ${cores} cores.`,
    '',
    '| replicas | req/s | vs 1 | p50 ms | p99 ms | errors |',
    '| -------: | ----: | ---: | -----: | -----: | -----: |',
    ...rows,
    '',
  ].join('\n');
}
