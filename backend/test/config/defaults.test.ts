import { loadConfig } from '../../src/config/load';
import { LIMIT_DEFAULTS } from '../../src/config/schema';
import { configFiles, loadFile, problemsOfEnv } from './helpers';

describe('loadConfig without a config file', () => {
  it('runs the demo dataset on the embedded store with no environment', () => {
    const config = loadConfig({});
    expect(config.source).toBe('defaults');
    expect(config.server).toEqual({
      host: '127.0.0.1',
      port: 3001,
      apiKey: '',
      rateLimitPerMinute: 6000,
      limits: LIMIT_DEFAULTS,
    });
    expect(config.redis).toBeNull();
    expect(config.datasets).toHaveLength(1);
    const [demo] = config.datasets;
    expect(demo).toMatchObject({
      name: 'demo',
      source: { kind: 'demo', rate: 5, history: '6h', updateRatio: 0.02, deleteRatio: 0.005, seed: 1 },
      dimensions: ['country', 'device', 'page'],
      metrics: ['amount', 'duration_ms'],
      distinct: ['user_id'],
      resolutionMs: 60_000,
      sync: { intervalMs: 5_000, batchSize: 5000, lagMs: 2_000, lookbackMs: 30_000 },
      staleAfterMs: 120_000,
      retentionMs: 7 * 86_400_000,
    });
  });

  it('takes the port from PORT as a number', () => {
    expect(loadConfig({ PORT: '8080' }).server.port).toBe(8080);
  });

  it('names the variable when PORT is not a port', () => {
    expect(problemsOfEnv({ PORT: 'http' })).toEqual([
      'environment variable PORT: must be a whole number (got "http")',
    ]);
    expect(problemsOfEnv({ PORT: '70000' })).toEqual([
      'environment variable PORT: must be at most 65535 (got 70000)',
    ]);
  });

  it('takes the listen address from HOST', () => {
    expect(loadConfig({ HOST: '0.0.0.0' }).server.host).toBe('0.0.0.0');
  });

  it('takes the API key from LIVESYNC_API_KEY', () => {
    expect(loadConfig({ LIVESYNC_API_KEY: 's3cret' }).server.apiKey).toBe('s3cret');
  });

  it('uses Redis with the livesync prefix when REDIS_URL is set', () => {
    expect(loadConfig({ REDIS_URL: 'redis://cache:6379/2' }).redis).toEqual({
      url: 'redis://cache:6379/2',
      prefix: 'livesync',
    });
  });

  it('rejects a REDIS_URL that is not a Redis URL, without printing its password', () => {
    expect(problemsOfEnv({ REDIS_URL: 'http://user:hunter2@cache:6379' })).toEqual([
      'environment variable REDIS_URL: must be a redis://, rediss:// or unix:// URL, or redis+cluster:// for a Redis Cluster (got "http://user:***@cache:6379")',
    ]);
  });

  it('syncs public.events from PostgreSQL instead of the demo when DATABASE_URL is set', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://app:pw@db:5432/shop' });
    expect(config.datasets.map((dataset) => dataset.name)).toEqual(['events']);
    expect(config.datasets[0]).toMatchObject({
      source: {
        kind: 'postgres',
        url: 'postgres://app:pw@db:5432/shop',
        table: 'public.events',
        id: 'id',
        time: 'ts',
        cursor: 'updated_at',
        deleted: 'deleted_at',
        poolSize: 2,
        statementTimeout: '30s',
      },
      dimensions: ['country', 'device'],
      metrics: ['amount', 'duration_ms'],
      distinct: ['user_id'],
      resolutionMs: 60_000,
      sync: { intervalMs: 5_000, batchSize: 5000, lagMs: 2_000, lookbackMs: 30_000 },
      staleAfterMs: 120_000,
      retentionMs: 30 * 86_400_000,
    });
  });

  it('treats empty variables as unset', () => {
    const config = loadConfig({ PORT: '', REDIS_URL: '', DATABASE_URL: '', LIVESYNC_CONFIG: '' });
    expect(config.server.port).toBe(3001);
    expect(config.redis).toBeNull();
    expect(config.datasets[0]?.name).toBe('demo');
  });

  it('ignores those variables when a config file is given', () => {
    const files = configFiles();
    try {
      const file = files.write(
        'server: { port: 4000 }\ndatasets:\n  - { name: only, source: { kind: demo } }\n',
      );
      const config = loadFile(file, {
        PORT: '8080',
        HOST: '0.0.0.0',
        LIVESYNC_API_KEY: 'k',
        REDIS_URL: 'redis://cache',
        DATABASE_URL: 'postgres://db/x',
      });
      expect(config.server).toEqual({
        host: '127.0.0.1',
        port: 4000,
        apiKey: '',
        rateLimitPerMinute: 6000,
        limits: LIMIT_DEFAULTS,
      });
      expect(config.redis).toBeNull();
      expect(config.datasets.map((dataset) => dataset.name)).toEqual(['only']);
      expect(config.source).toBe(file);
    } finally {
      files.cleanup();
    }
  });
});
