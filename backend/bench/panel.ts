/**
 * One panel (24h @ 1m by country) asked flat out by 50 connections through LiveSync's
 * response cache, beside the ceiling: a bare Fastify server in this same process answering
 * the very bytes LiveSync answered, with nothing computed. Also LiveSync with the cache
 * skipped, and with gzip and br asked for (Accept-Encoding), so the cost of compression
 * shows in req/s and its gain in bytes.
 */
import Fastify from 'fastify';
import { request } from 'node:http';
import { inChild } from './serving';

export interface PanelRate {
  throughput: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** Bytes of the response body on the wire (compressed when an encoding was asked for). */
  bytes: number;
}

export interface PanelScenarioResult {
  /** Bare Fastify answering LiveSync's identity bytes. */
  fastify: PanelRate;
  cached: PanelRate;
  uncached: PanelRate;
  gzip: PanelRate;
  br: PanelRate;
}

/** The raw body as it crosses the wire (fetch would decompress it). */
function rawBody(
  url: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; bytes: Buffer; encoding: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/api/query`, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          bytes: Buffer.concat(chunks),
          encoding: res.headers['content-encoding'],
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function drive(
  url: string,
  body: string,
  headers: Record<string, string>,
  durationS: number,
): Promise<PanelRate> {
  const sample = await rawBody(url, body, headers);
  if (sample.status !== 200) throw new Error(`panel scenario: HTTP ${sample.status} from ${url}`);
  const result = await inChild({ url, path: '/api/query', headers, body, durationS, connections: 50 });
  return {
    throughput: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    bytes: sample.bytes.length,
  };
}

export async function panelScenario(options: {
  baseUrl: string;
  body: string;
  durationS: number;
}): Promise<PanelScenarioResult> {
  const { baseUrl, body, durationS } = options;
  const json = { 'content-type': 'application/json' };
  // The bytes LiveSync answers now (identity), served as they are by a server that does nothing else.
  const { bytes } = await rawBody(baseUrl, body, json);
  const bare = Fastify({ logger: false });
  bare.post('/api/query', (_request, reply) =>
    reply.type('application/json; charset=utf-8').header('cache-control', 'private, no-cache').send(bytes),
  );
  const bareUrl = await bare.listen({ host: '127.0.0.1', port: 0 });
  try {
    const fastify = await drive(bareUrl, body, json, durationS);
    const cached = await drive(baseUrl, body, json, durationS);
    const uncached = await drive(baseUrl, body, { ...json, 'x-cache-skip': 'true' }, durationS);
    const gzip = await drive(baseUrl, body, { ...json, 'accept-encoding': 'gzip' }, durationS);
    const br = await drive(baseUrl, body, { ...json, 'accept-encoding': 'br' }, durationS);
    return { fastify, cached, uncached, gzip, br };
  } finally {
    await bare.close();
  }
}

/** The cached panel's share of the bare-Fastify rate that counts as a pass. */
export const PANEL_GOAL = 0.7;

export function panelGoalLines(r: PanelScenarioResult, int: (v: number) => string): string[] {
  const share = r.cached.throughput / r.fastify.throughput;
  return [
    `| 24h @ 1m by country, cached, ≥ ${PANEL_GOAL * 100} % of bare Fastify answering the same ${int(r.fastify.bytes)} bytes (req/s, 50 connections, same run) | ` +
      `${(share * 100).toFixed(0)} % (${int(r.cached.throughput)} of ${int(r.fastify.throughput)} req/s; uncached ${int(r.uncached.throughput)}) | ${share >= PANEL_GOAL ? '**pass**' : '**miss**'} |`,
  ];
}

export function renderPanelScenario(
  r: PanelScenarioResult,
  durationS: number,
  ms: (v: number) => string,
  int: (v: number) => string,
): string[] {
  const row = (what: string, p: PanelRate) =>
    `| ${what} | ${int(p.throughput)} | ${((p.throughput / r.fastify.throughput) * 100).toFixed(0)} % | ${ms(p.p50)} | ${ms(p.p99)} | ${int(p.bytes)} | ${(p.bytes / r.cached.bytes).toFixed(3)} | ${p.errors} / ${p.non2xx} |`;
  return [
    '## One panel flat out',
    '',
    `${durationS} s each: the 24h @ 1m by country panel, the same request every time, from 50 concurrent connections (autocannon, ` +
      'another process), nothing syncing. "bare Fastify" is a Fastify server in the benchmark process answering the bytes ' +
      'LiveSync answered, precomputed: the ceiling for this payload on this machine.',
    '',
    '| | req/s | of bare Fastify | p50 ms | p99 ms | body bytes | of identity | errors / non-2xx |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
    row('bare Fastify, same bytes', r.fastify),
    row('LiveSync, response cache', r.cached),
    row('LiveSync, `X-Cache-Skip: true`', r.uncached),
    row('LiveSync, response cache, `Accept-Encoding: gzip`', r.gzip),
    row('LiveSync, response cache, `Accept-Encoding: br`', r.br),
  ];
}
