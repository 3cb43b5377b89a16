import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';
import { pino } from 'pino';
import { buildApp } from '../src/app';
import type { Config } from '../src/config/load';
import { createSource } from '../src/sources';
import { RedisStore } from '../src/store/redis';
import { SyncManager } from '../src/sync/manager';
import { deleteKeys } from '../test/helpers';
import { cdcSpec } from '../test/integration/cdc-support';
import { eventsTableSql } from '../test/integration/support';
import { ThrowawayPostgres } from '../test/servers';

/**
 * Commit → answer and commit → SSE event latency of a `mode: cdc` dataset: a PostgreSQL of its
 * own with wal_level=logical (the shared one must not be reconfigured), the real service
 * (Fastify app, sync engine, Redis store), one row committed at a time. For each commit, the
 * time from COMMIT returning until `/api/query` answers with the row counted, and until the
 * `change` event for it arrives on `/api/datasets/events/events`.
 */

export interface CdcLatency {
  commits: number;
  answer: { p50: number; p99: number; max: number };
  event: { p50: number; p99: number; max: number };
}

const GOAL_MS = 1000;
const STRETCH_MS = 250;
/** Pause between commits, so that each one is measured alone. */
const GAP_MS = 50;

export async function cdcScenario(options: { redisUrl: string; commits: number }): Promise<CdcLatency> {
  const pg = new ThrowawayPostgres();
  await pg.start();
  const pool = new Pool({ connectionString: pg.url, max: 2 });
  const prefix = `lsbench-cdc-${randomBytes(5).toString('hex')}`;
  const store = await RedisStore.connect(options.redisUrl, prefix);
  let app: Awaited<ReturnType<typeof buildApp>> | null = null;
  const sse = new AbortController();
  try {
    await pool.query('CREATE SCHEMA bench');
    await pool.query(eventsTableSql('bench.events'));
    await pool.query(
      `INSERT INTO bench.events (ts, country, device, amount, duration_ms, user_id)
       SELECT now() - random() * interval '1 hour', 'US', 'mobile', 1, 1, 'u' FROM generate_series(1, 10000)`,
    );
    const spec = cdcSpec('bench.events', pg.url, { heartbeat: '1s' });
    const sync = new SyncManager([spec], createSource, store, pino({ level: 'silent' }));
    const config: Config = {
      server: { host: '127.0.0.1', port: 0, apiKey: '', rateLimitPerMinute: 0 },
      redis: { url: options.redisUrl, prefix },
      grafanaLive: null,
      datasets: [spec],
      source: 'bench',
    };
    app = await buildApp({ config, store, sync, logger: pino({ level: 'silent' }) });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    await until(async () => (await count(base)) === 10_000, 120_000);

    const events: number[] = [];
    const stream = await fetch(`${base}/api/datasets/events/events`, { signal: sse.signal });
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stream.body!) {
        const text = decoder.decode(chunk as Uint8Array);
        for (const _ of text.matchAll(/^event: change$/gm)) events.push(performance.now());
      }
    })().catch(() => undefined);

    const answer: number[] = [];
    const event: number[] = [];
    for (let i = 0; i < options.commits; i++) {
      const before = events.length;
      await pool.query(
        `INSERT INTO bench.events (ts, country, device, amount, duration_ms, user_id) VALUES (now(), 'US', 'mobile', 1, 1, 'u')`,
      );
      const committed = performance.now();
      await until(async () => (await count(base)) === 10_001 + i, 10_000);
      answer.push(performance.now() - committed);
      await until(async () => events.length > before, 10_000);
      event.push(events[before]! - committed);
      await new Promise((resolve) => setTimeout(resolve, GAP_MS));
    }
    return { commits: options.commits, answer: summary(answer), event: summary(event) };
  } finally {
    sse.abort();
    await app?.close();
    await deleteKeys(options.redisUrl, `${prefix}:*`);
    await pool.end();
    await pg.stop();
  }
}

/** The goal rows of the report: p99 ≤ 1 s, stretch 250 ms, each graded. */
export function cdcGoalLines(r: CdcLatency, ms: (v: number) => string): string[] {
  const row = (what: string, l: CdcLatency['answer']) =>
    `| commit → ${what} p99 ≤ ${GOAL_MS} ms, stretch ${STRETCH_MS} ms (mode cdc, ${r.commits} single-row commits) | ` +
    `p50 ${ms(l.p50)} ms, p99 ${ms(l.p99)} ms, max ${ms(l.max)} ms | ${l.p99 <= GOAL_MS ? '**pass**' : '**miss**'}` +
    `${l.p99 <= STRETCH_MS ? ' (stretch **pass**)' : ' (stretch **miss**)'} |`;
  return [row('answer (`/api/query` counts the row)', r.answer), row('SSE `change` event', r.event)];
}

async function count(base: string): Promise<number> {
  const now = Date.now();
  const response = await fetch(`${base}/api/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-cache-skip': 'true' },
    body: JSON.stringify({
      range: { from: now - 2 * 3_600_000, to: now + 60_000 },
      intervalMs: 3_600_000,
      maxDataPoints: 10,
      queries: [{ refId: 'A', dataset: 'events', aggregations: ['count'], format: 'table' }],
    }),
  });
  const body = (await response.json()) as {
    results?: { A?: { frames?: { data: { values: number[][] } }[] } };
  };
  const counts = body.results?.A?.frames?.[0]?.data.values[1] ?? [];
  return counts.reduce((a, b) => a + b, 0);
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`no answer within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function summary(samples: number[]): CdcLatency['answer'] {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return { p50: at(0.5), p99: at(0.99), max: sorted.at(-1)! };
}
