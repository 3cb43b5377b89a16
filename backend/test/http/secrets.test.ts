import { buildApp } from '../../src/app';
import { resolveDataset } from '../../src/config/dataset';
import type { Config } from '../../src/config/load';
import { createLogger } from '../../src/observability/logger';
import { createSource } from '../../src/sources';
import { MemoryStore } from '../../src/store/memory';
import { SyncManager } from '../../src/sync/manager';

const API_KEY = 'KEY-9f8e7d6c5b4a';
const DB_PASSWORD = 'pw-Zq8x1Lm0';
const TOKEN = 'glsa_tokenValue123';
const HEADER_SECRET = 'hdr-secret-77aa';

describe('secrets in logs', () => {
  it('never writes the API key, a connection-string password or a token, at any level', async () => {
    const chunks: string[] = [];
    const logger = createLogger({
      level: 'trace',
      destination: { write: (c: string) => void chunks.push(c) },
    });
    const postgres = resolveDataset({
      name: 'orders',
      // Nothing listens on port 1: every sync fails and is logged with its error.
      source: {
        kind: 'postgres',
        url: `postgres://app:${DB_PASSWORD}@127.0.0.1:1/shop`,
        table: 'public.orders',
        id: 'id',
        time: 'ts',
        cursor: 'updated_at',
        poolSize: 1,
        statementTimeout: '5s',
      },
      dimensions: [],
      metrics: [],
      distinct: [],
      resolution: '1m',
      sync: { interval: '1h', batchSize: 100, lag: '0s', lookback: '0s' },
      staleAfter: '2h',
      retention: '1d',
    });
    const http = resolveDataset({
      name: 'api',
      source: {
        kind: 'http',
        url: `http://127.0.0.1:1/records?token=${TOKEN}`,
        cursorParam: 'since',
        limitParam: 'limit',
        recordsPath: 'records',
        pagination: { kind: 'page', pageParam: 'page' },
        fields: {},
        headers: { Authorization: `Bearer ${HEADER_SECRET}` },
        timeout: '1s',
        id: 'id',
        time: 'ts',
        cursor: 'updated_at',
      },
      dimensions: [],
      metrics: [],
      distinct: [],
      resolution: '1m',
      sync: { interval: '1h', batchSize: 100, lag: '0s', lookback: '0s' },
      staleAfter: '2h',
      retention: '1d',
    });
    const config: Config = {
      server: { host: '127.0.0.1', port: 0, apiKey: API_KEY, rateLimitPerMinute: 0 },
      redis: { url: `redis://:${DB_PASSWORD}@127.0.0.1:6379/0`, prefix: 'x' },
      grafanaLive: { url: 'http://grafana:3000', token: TOKEN, streamId: 'livesync' },
      datasets: [postgres, http],
      source: 'test',
    };
    logger.debug({ config }, 'configuration loaded');
    const sync = new SyncManager(
      config.datasets,
      createSource,
      new MemoryStore(),
      logger.child({ module: 'sync' }),
      {
        backoff: { initialMs: 1, maxMs: 2 },
      },
    );
    const app = await buildApp({ config, store: new MemoryStore(), sync, logger });
    await app.ready();
    await Promise.all([sync.get('orders')!.syncNow(), sync.get('api')!.syncNow()]);
    expect(sync.get('orders')!.status().lastError).not.toBeNull();
    expect(sync.get('api')!.status().lastError).not.toBeNull();
    for (const auth of [`Bearer ${API_KEY}`, 'Bearer wrong', `Basic ${API_KEY}`]) {
      await app.inject({
        method: 'GET',
        url: `/api/datasets?key=${API_KEY}`,
        headers: { authorization: auth },
      });
      await app.inject({
        method: 'POST',
        url: '/api/query',
        headers: { authorization: auth },
        payload: { bad: API_KEY },
      });
    }
    const status = await app.inject({
      method: 'GET',
      url: '/api/datasets',
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    await app.close();

    const text = chunks.join('');
    expect(text).toContain('sync run failed');
    expect(text).toContain('incoming request');
    expect(chunks.length).toBeGreaterThan(10);
    for (const secret of [API_KEY, DB_PASSWORD, TOKEN, HEADER_SECRET]) expect(text).not.toContain(secret);
    // Status shown to API clients names the error without the password either.
    expect(status.body).not.toContain(DB_PASSWORD);
    expect(status.body).not.toContain(TOKEN);
  });
});
