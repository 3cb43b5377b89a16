import { ConfigError, loadConfig } from '../../src/config/load';
import { LIMIT_DEFAULTS } from '../../src/config/schema';
import { configFiles, loadFile, problemsOf } from './helpers';

const files = configFiles();
afterAll(() => files.cleanup());

/** A valid dataset, as YAML list items indented under `datasets:`. */
const DEMO = '  - name: demo\n    source: { kind: demo }\n';

describe('loadConfig with a config file', () => {
  it('reads every key of a full file', () => {
    const file = files.write(`
server: { host: 0.0.0.0, port: 3100, apiKey: k3y }
redis: { url: "rediss://cache:6380/1", prefix: "ls:prod" }
datasets:
  - name: events
    source:
      kind: postgres
      url: postgres://app@db/shop
      table: public.events
      id: id
      time: ts
      cursor: updated_at
      deleted: deleted_at
      poolSize: 4
      statementTimeout: 1m
    dimensions: [country, device]
    metrics: [amount, duration_ms]
    distinct: [user_id]
    resolution: 10s
    sync: { interval: 2s, batchSize: 1000, lag: 1s, lookback: 1m, permanentRetry: 90s }
    staleAfter: 30s
    retention: 2d
`);
    const config = loadFile(file);
    expect(config).toEqual({
      server: {
        host: '0.0.0.0',
        port: 3100,
        apiKey: 'k3y',
        rateLimitPerMinute: 6000,
        limits: LIMIT_DEFAULTS,
      },
      redis: { url: 'rediss://cache:6380/1', prefix: 'ls:prod' },
      grafanaLive: null,
      lease: { ttlMs: 15_000 },
      source: file,
      datasets: [
        {
          name: 'events',
          source: {
            kind: 'postgres',
            url: 'postgres://app@db/shop',
            table: 'public.events',
            id: 'id',
            time: 'ts',
            cursor: 'updated_at',
            deleted: 'deleted_at',
            poolSize: 4,
            statementTimeout: '1m',
          },
          dimensions: ['country', 'device'],
          metrics: ['amount', 'duration_ms'],
          distinct: ['user_id'],
          resolutionMs: 10_000,
          sync: {
            intervalMs: 2_000,
            batchSize: 1000,
            lagMs: 1_000,
            lookbackMs: 60_000,
            permanentRetryMs: 90_000,
            reconcile: { everyMs: 3_600_000, pageSize: 1000, perRun: 10_000 },
          },
          staleAfterMs: 30_000,
          retentionMs: 2 * 86_400_000,
          layout: expect.objectContaining({ tiers: [10_000, 3_600_000, 86_400_000] }),
        },
      ],
    });
  });

  it('fills defaults for the keys left out', () => {
    const config = loadFile(
      files.write(`datasets:\n  - name: events\n    source: { kind: demo }\n    sync: { batchSize: 10 }\n`),
    );
    expect(config.server).toEqual({
      host: '127.0.0.1',
      port: 3001,
      apiKey: '',
      rateLimitPerMinute: 6000,
      limits: LIMIT_DEFAULTS,
    });
    expect(config.redis).toBeNull();
    expect(config.datasets[0]).toMatchObject({
      dimensions: [],
      resolutionMs: 60_000,
      sync: { intervalMs: 5_000, batchSize: 10, lagMs: 2_000, lookbackMs: 30_000 },
      staleAfterMs: 120_000,
      retentionMs: 30 * 86_400_000,
    });
  });

  it('fills the defaults of the source branch its kind selects', () => {
    const config = loadFile(
      files.write(`
datasets:
  - name: api
    source: { kind: http, url: "https://api.example.com/x", id: id, time: ts, cursor: v, pagination: { kind: page } }
`),
    );
    expect(config.datasets[0]?.source).toEqual({
      kind: 'http',
      url: 'https://api.example.com/x',
      id: 'id',
      time: 'ts',
      cursor: 'v',
      cursorParam: 'since',
      limitParam: 'limit',
      recordsPath: 'records',
      pagination: { kind: 'page', pageParam: 'page' },
      fields: {},
      headers: {},
      timeout: '10s',
    });
  });

  it('takes an empty redis block as no redis block', () => {
    const config = loadFile(files.write(`redis:\n  # url: redis://cache\ndatasets:\n${DEMO}`));
    expect(config.redis).toBeNull();
  });

  it('prefixes every problem with the file name as it was given', () => {
    const file = files.write(`datasets:\n  - name: Bad Name\n    source: { kind: demo }\n`);
    expect(() => loadFile(file)).toThrow(
      new ConfigError([
        `${file}: datasets[0].name: must be 1 to 64 lowercase letters, digits, _ or - (got "Bad Name")`,
      ]),
    );
  });

  it('reports a file that cannot be read', () => {
    expect(() => loadConfig({ LIVESYNC_CONFIG: `${files.dir}/missing.yaml` })).toThrow(
      `${files.dir}/missing.yaml: cannot read the configuration file (no such file)`,
    );
  });

  it('reports YAML syntax errors with line and column', () => {
    const file = files.write(`datasets:\n  - name: a\n  - name: b\n    name: c\n`);
    const problems = problemsOf(file);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${file}:4:5: Map keys must be unique`));
  });

  it('reports an empty file as missing its datasets', () => {
    expect(problemsOf(files.write(''))).toEqual(['datasets: is required']);
  });

  it('reports a file that is not a mapping', () => {
    expect(problemsOf(files.write('- a\n- b\n'))).toEqual([
      'must be a mapping of keys to values (got a list)',
    ]);
  });
});

describe('${VAR} interpolation', () => {
  it('substitutes variables and defaults in string values', () => {
    const file = files.write(`
server: { apiKey: "\${API_KEY}", host: "\${HOST:-0.0.0.0}" }
redis: { url: "redis://\${REDIS_HOST:-localhost}:\${REDIS_PORT:-6379}/0" }
datasets:
  - name: events
    source: { kind: postgres, url: "\${DATABASE_URL}", table: events, id: id, time: ts, cursor: v }
`);
    const config = loadFile(file, {
      API_KEY: 'abc',
      REDIS_HOST: 'cache',
      REDIS_PORT: '',
      DATABASE_URL: 'postgres://db/x',
    });
    expect(config.server.apiKey).toBe('abc');
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.redis?.url).toBe('redis://cache:6379/0');
    expect(config.datasets[0]?.source).toMatchObject({ url: 'postgres://db/x' });
  });

  it('reads server.limits, each key defaulting on its own, and names a bad one', () => {
    const file = files.write(
      `server:\n  limits: { maxCellsPerRequest: 1000000, maxConcurrentQueries: 4 }\ndatasets:\n${DEMO}`,
    );
    expect(loadFile(file).server.limits).toEqual({
      ...LIMIT_DEFAULTS,
      maxCellsPerRequest: 1_000_000,
      maxConcurrentQueries: 4,
    });
    const bad = files.write(
      `server:\n  limits: { maxConcurrentQueries: 0, maxHeapUsedPercent: 120, maxPointsPerRequest: lots }\ndatasets:\n${DEMO}`,
    );
    expect(problemsOf(bad)).toEqual([
      'server.limits.maxPointsPerRequest: must be a whole number (got "lots")',
      'server.limits.maxConcurrentQueries: must be at least 1 (got 0)',
      'server.limits.maxHeapUsedPercent: must be at most 100 (got 120)',
    ]);
  });

  it('coerces a variable to a number where the schema wants one', () => {
    const file = files.write(`server: { port: "\${PORT}" }\ndatasets:\n${DEMO}`);
    expect(loadFile(file, { PORT: '4321' }).server.port).toBe(4321);
    expect(loadFile(files.write(`server: { port: "\${PORT:-3005}" }\ndatasets:\n${DEMO}`)).server.port).toBe(
      3005,
    );
    expect(problemsOf(file, { PORT: 'http' })).toEqual(['server.port: must be a whole number (got "http")']);
  });

  it('does not truncate or invent numbers', () => {
    const file = files.write(
      `datasets:\n  - name: d\n    source: { kind: demo, seed: true }\n    sync: { batchSize: 2.5 }\n`,
    );
    expect(problemsOf(file)).toEqual([
      'datasets[0].source.seed: must be a whole number (got true)',
      'datasets[0].sync.batchSize: must be a whole number (got 2.5)',
    ]);
  });

  it('keeps $${VAR} as a literal ${VAR}', () => {
    const file = files.write(`server: { apiKey: "a$\${NOT_A_VAR}b$$c" }\ndatasets:\n${DEMO}`);
    expect(loadFile(file).server.apiKey).toBe('a${NOT_A_VAR}b$$c');
  });

  it('never lets a value inject YAML structure', () => {
    const file = files.write(`server: { apiKey: "\${KEY}" }\ndatasets:\n${DEMO}`);
    const key = 'x\nredis: { url: "redis://evil" }\n- y: [1]';
    const config = loadFile(file, { KEY: key });
    expect(config.server.apiKey).toBe(key);
    expect(config.redis).toBeNull();
  });

  it('does not interpolate keys', () => {
    const file = files.write(
      `datasets:\n  - name: d\n    source:\n      kind: http\n      url: https://x.test\n      id: id\n      time: t\n      cursor: c\n      pagination: { kind: page }\n      headers: { "\${H}": v }\n`,
    );
    expect(loadFile(file, { H: 'X-Other' }).datasets[0]?.source).toMatchObject({ headers: { '${H}': 'v' } });
  });

  it('names the variable and the key path of an unset variable', () => {
    const file = files.write(`
server: { port: "\${PORT}" }
datasets:
  - name: events
    source: { kind: postgres, url: "\${DATABASE_URL}", table: events, id: id, time: ts, cursor: v }
`);
    expect(problemsOf(file)).toEqual([
      'server.port: environment variable PORT is not set',
      'datasets[0].source.url: environment variable DATABASE_URL is not set',
    ]);
  });

  it('reports malformed references', () => {
    const file = files.write(`server: { apiKey: "\${1X}", host: "\${HOST" }\ndatasets:\n${DEMO}`);
    expect(problemsOf(file)).toEqual([
      'server.apiKey: "${1X}" is not a variable reference (use ${NAME} or ${NAME:-default})',
      'server.host: "${" is not closed by "}" (write "$${" for a literal "${")',
    ]);
  });
});

describe('validation problems', () => {
  const dataset = (extra: string) =>
    files.write(`datasets:\n  - name: events\n    source: { kind: demo }\n${extra}`);

  it('a bad duration', () => {
    expect(problemsOf(dataset('    sync: { interval: 5 seconds }\n'))).toEqual([
      'datasets[0].sync.interval: must be a duration like 5s, 2m, 1h (got "5 seconds")',
    ]);
    expect(problemsOf(dataset('    sync: { permanentRetry: soon }\n'))).toEqual([
      'datasets[0].sync.permanentRetry: must be a duration like 5s, 2m, 1h (got "soon")',
    ]);
  });

  it('an unknown key, with the closest known one', () => {
    expect(problemsOf(dataset('    sync: { intervall: 5s }\n    colour: red\n'))).toEqual([
      'datasets[0]: unknown key "colour"',
      'datasets[0].sync: unknown key "intervall" (did you mean "interval"?)',
    ]);
    expect(problemsOf(files.write(`foo: 1\ndatasets:\n${DEMO}`))).toEqual(['unknown key "foo"']);
  });

  it('a value of the wrong type', () => {
    expect(problemsOf(dataset('    dimensions: country\n    sync: { batchSize: lots }\n'))).toEqual([
      'datasets[0].dimensions: must be a list (got "country")',
      'datasets[0].sync.batchSize: must be a whole number (got "lots")',
    ]);
  });

  it('a source kind that does not exist, without the errors of every kind', () => {
    const file = files.write(`datasets:\n  - name: events\n    source: { kind: mysql, url: x }\n`);
    expect(problemsOf(file)).toEqual([
      'datasets[0].source.kind: must be one of postgres, http, demo (got "mysql")',
    ]);
    const noKind = files.write(`datasets:\n  - name: events\n    source: { url: x }\n`);
    expect(problemsOf(noKind)).toEqual([
      'datasets[0].source.kind: is required (one of postgres, http, demo)',
    ]);
  });

  it('only the errors of the source kind given', () => {
    const file = files.write(`
datasets:
  - name: orders
    source: { kind: http, url: "ftp://x", time: t, cursor: c, pagination: { kind: cursor } }
`);
    expect(problemsOf(file)).toEqual([
      'datasets[0].source.id: is required',
      'datasets[0].source.url: must be an http:// or https:// URL (got "ftp://x")',
      'datasets[0].source.pagination.nextPath: is required',
    ]);
  });

  it('a postgres source with both table and query, or neither', () => {
    const source = (extra: string) =>
      files.write(
        `datasets:\n  - name: events\n    source: { kind: postgres, url: "postgres://db/x", id: id, time: ts, cursor: v${extra} }\n`,
      );
    expect(problemsOf(source(', table: events, query: SELECT 1'))).toEqual([
      'datasets[0].source: has both table and query; keep one',
    ]);
    expect(problemsOf(source(''))).toEqual(['datasets[0].source: needs a table or a query']);
  });

  it('a postgres source in mode cdc: a table, a known mode, slot names PostgreSQL accepts', () => {
    const source = (extra: string) =>
      files.write(
        `datasets:\n  - name: events\n    source: { kind: postgres, url: "postgres://db/x", id: id, time: ts, cursor: v${extra} }\n`,
      );
    expect(problemsOf(source(', mode: cdc, query: SELECT 1'))).toEqual([
      'datasets[0].source.query: mode cdc replicates a table: set table instead of query',
    ]);
    expect(problemsOf(source(', table: events, mode: push'))).toEqual([
      'datasets[0].source.mode: does not match any of the allowed forms',
    ]);
    expect(problemsOf(source(', table: events, mode: cdc, cdc: { slot: Events-1 }'))).toEqual([
      'datasets[0].source.cdc.slot: must be 1 to 63 lowercase letters, digits or _ (got "Events-1")',
    ]);
    expect(loadFile(source(', table: events, mode: cdc, cdc: {}')).datasets[0]!.source).toMatchObject({
      mode: 'cdc',
      cdc: { heartbeat: '10s' },
    });
  });

  it('grafanaLive with neither or both of token and tokenFile', () => {
    const live = (extra: string) =>
      files.write(`grafanaLive: { url: "http://grafana:3000"${extra} }\ndatasets:\n${DEMO}`);
    expect(problemsOf(live(''))).toEqual(['grafanaLive: set exactly one of token and tokenFile']);
    expect(problemsOf(live(', token: t, tokenFile: /run/t'))).toEqual([
      'grafanaLive: set exactly one of token and tokenFile',
    ]);
    expect(loadFile(live(', tokenFile: /run/t')).grafanaLive).toEqual({
      url: 'http://grafana:3000',
      tokenFile: '/run/t',
      streamId: 'livesync',
    });
  });

  it('duplicate dataset names', () => {
    const file = files.write(`datasets:\n${DEMO}  - name: other\n    source: { kind: demo }\n${DEMO}`);
    expect(problemsOf(file)).toEqual(['datasets[2].name: "demo" is already used by datasets[0]']);
  });

  it('a lease too short to renew', () => {
    const file = files.write(`lease: { ttl: 500ms }\ndatasets:\n${DEMO}`);
    expect(problemsOf(file)).toEqual(['lease.ttl: must be at least 1s']);
  });

  it('staleAfter not longer than the sync interval', () => {
    expect(problemsOf(dataset('    sync: { interval: 1m }\n    staleAfter: 1m\n'))).toEqual([
      'datasets[0].staleAfter: must be longer than sync.interval (1m)',
    ]);
  });

  it('retention shorter than the resolution', () => {
    expect(problemsOf(dataset('    resolution: 1h\n    retention: 30m\n'))).toEqual([
      'datasets[0].retention: must be at least the resolution (1h)',
    ]);
  });

  it('zero durations where they cannot be zero', () => {
    expect(problemsOf(dataset('    resolution: 0s\n    sync: { interval: 0ms }\n'))).toEqual([
      'datasets[0].resolution: must be longer than 0',
      'datasets[0].sync.interval: must be longer than 0',
    ]);
  });

  it('what resolveDataset rejects, at the same kind of path', () => {
    expect(problemsOf(dataset('    resolution: 7s\n'))).toEqual([
      'datasets[0].resolution: 7s must divide a day evenly (e.g. 10s, 1m, 5m, 1h)',
    ]);
    expect(problemsOf(dataset('    dimensions: [amount]\n    metrics: [amount]\n'))).toEqual([
      'datasets[0]: amount cannot be both a dimension and a metric/distinct field',
    ]);
  });

  it('repeated and too many list entries, out-of-range numbers', () => {
    expect(
      problemsOf(
        dataset('    dimensions: [a, b, a]\n    distinct: [a, b, c, d, e]\n    sync: { batchSize: 0 }\n'),
      ),
    ).toEqual([
      'datasets[0].dimensions: lists "a" more than once',
      'datasets[0].distinct: must list at most 4 entries',
      'datasets[0].sync.batchSize: must be at least 1 (got 0)',
    ]);
  });

  it('missing and empty datasets', () => {
    expect(problemsOf(files.write('server: { port: 3001 }\n'))).toEqual(['datasets: is required']);
    expect(problemsOf(files.write('datasets: []\n'))).toEqual(['datasets: must list at least 1 entry']);
  });

  it('every problem at once, across datasets', () => {
    const file = files.write(`
server: { port: -1 }
datasets:
  - name: ok
    source: { kind: demo }
    staleAfter: 1s
  - name: Bad
    source: { kind: demo, rate: 0 }
`);
    expect(problemsOf(file)).toEqual([
      'server.port: must be at least 0 (got -1)',
      'datasets[1].name: must be 1 to 64 lowercase letters, digits, _ or - (got "Bad")',
      'datasets[1].source.rate: must be greater than 0 (got 0)',
      'datasets[0].staleAfter: must be longer than sync.interval (5s)',
    ]);
  });
});
