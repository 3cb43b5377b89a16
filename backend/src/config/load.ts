import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { resolveDataset, type DatasetSpec } from './dataset';
import { formatDuration, parseDuration } from './duration';
import { interpolateEnv } from './interpolate';
import { reconcileProblems } from './reconcile';
import { httpSourceProblems } from './http-source';
import { parseRedisUrl } from './redis-url';
import { formatKeyPath, isPlainObject, type KeyPath } from './keypath';
import { ConfigSchema, type Limits, type RawDataset } from './schema';
import { show, validate, type Problem } from './validate';

export { redactUrl } from './redact';

export interface Config {
  server: {
    host: string;
    port: number;
    apiKey: string;
    rateLimitPerMinute: number;
    /** Always complete when loaded; a config built in code may leave keys out for their defaults. */
    limits?: Partial<Limits>;
  };
  /** Null when the config has no `redis` block: the service then uses its embedded in-memory store. */
  redis: { url: string; prefix: string } | null;
  /** The datasets' sync leases (sync/lease.ts); optional in code, where the default applies. */
  lease?: { ttlMs: number };
  /** Null when no `grafanaLive` block is given: changes then go out over SSE only. */
  grafanaLive: { url: string; token?: string; tokenFile?: string; streamId: string } | null;
  datasets: DatasetSpec[];
  /** The config file's absolute path, or `defaults` when the config was built from the environment. */
  source: string;
}

/** A shorter lease would have to be renewed more often than a busy Redis or event loop can promise. */
const LEASE_TTL_MIN_MS = 1_000;

/** A configuration that cannot start the service; the message lists every problem, one per line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/**
 * The service's configuration, validated.
 *
 * With `LIVESYNC_CONFIG` set, the YAML file it names is the whole configuration: the
 * variables below are then ignored (`PORT` does not override `server.port`), and the
 * environment reaches the file only through `${VAR}` references, so one file says
 * everything that applies.
 *
 * Without it, the configuration is built from defaults and these variables: `PORT`, `HOST`
 * (server.port, server.host), `LIVESYNC_API_KEY` (server.apiKey), `REDIS_URL` (a redis
 * block with prefix `livesync`; without it the store is embedded and in memory) and
 * `DATABASE_URL` (a postgres dataset `events` on `public.events` instead of the demo
 * dataset). An empty variable counts as unset.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const file = env['LIVESYNC_CONFIG'];
  return file ? loadFile(file, env) : loadDefaults(env);
}

/** Which environment variable a key of the default configuration comes from. */
const DEFAULTS_ENV: Readonly<Record<string, string>> = {
  'server.host': 'HOST',
  'server.port': 'PORT',
  'server.apiKey': 'LIVESYNC_API_KEY',
  'redis.url': 'REDIS_URL',
  'datasets[0].source.url': 'DATABASE_URL',
};

function loadDefaults(env: NodeJS.ProcessEnv): Config {
  const set = (name: string): string | undefined => (env[name] === '' ? undefined : env[name]);
  const server: Record<string, unknown> = {};
  if (set('HOST') !== undefined) server['host'] = set('HOST');
  if (set('PORT') !== undefined) server['port'] = set('PORT');
  if (set('LIVESYNC_API_KEY') !== undefined) server['apiKey'] = set('LIVESYNC_API_KEY');
  const databaseUrl = set('DATABASE_URL');
  const redisUrl = set('REDIS_URL');
  const raw = {
    server,
    ...(redisUrl === undefined ? {} : { redis: { url: redisUrl, prefix: 'livesync' } }),
    datasets: [databaseUrl === undefined ? demoDataset() : postgresDataset(databaseUrl)],
  };
  return build(raw, 'defaults', (path) => {
    const variable = DEFAULTS_ENV[formatKeyPath(path)];
    return variable === undefined
      ? `built-in defaults: ${formatKeyPath(path)}`
      : `environment variable ${variable}`;
  });
}

function demoDataset(): Record<string, unknown> {
  return {
    name: 'demo',
    source: { kind: 'demo' },
    dimensions: ['country', 'device', 'page'],
    metrics: ['amount', 'duration_ms'],
    distinct: ['user_id'],
    resolution: '1m',
    staleAfter: '2m',
    retention: '7d',
  };
}

function postgresDataset(url: string): Record<string, unknown> {
  return {
    name: 'events',
    source: {
      kind: 'postgres',
      url,
      table: 'public.events',
      id: 'id',
      time: 'ts',
      cursor: 'updated_at',
      deleted: 'deleted_at',
    },
    dimensions: ['country', 'device'],
    metrics: ['amount', 'duration_ms'],
    distinct: ['user_id'],
    resolution: '1m',
    sync: { interval: '5s', batchSize: 5000, lag: '2s', lookback: '30s' },
    staleAfter: '2m',
    retention: '30d',
  };
}

function loadFile(file: string, env: NodeJS.ProcessEnv): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([`${file}: cannot read the configuration file (${readErrorReason(error)})`]);
  }
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      document.errors.map((error) => {
        const { line, col } = lines.linePos(error.pos[0]);
        return `${file}:${line}:${col}: ${error.message.split('\n')[0]}`;
      }),
    );
  }
  // An empty file is an empty mapping, so the problem reported is the missing `datasets`.
  const parsed: unknown = document.toJS() ?? {};
  const { value, problems } = interpolateEnv(parsed, env);
  const label = (path: KeyPath) => (path.length === 0 ? file : `${file}: ${formatKeyPath(path)}`);
  return build(dropNulls(value), resolve(file), label, problems);
}

function readErrorReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'EACCES') return 'permission denied';
  return error instanceof Error ? error.message : String(error);
}

/**
 * A key written with nothing after it (`redis:` with its lines commented out) reads as
 * YAML null; no key takes null, so it counts as absent: an empty `redis:` selects the
 * embedded store, an empty `url:` is reported as missing.
 */
function dropNulls(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(dropNulls);
  if (!isPlainObject(node)) return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([, value]) => value !== null)
      .map(([key, value]) => [key, dropNulls(value)]),
  );
}

function build(
  input: unknown,
  source: string,
  label: (path: KeyPath) => string,
  earlier: Problem[] = [],
): Config {
  const { value, problems: schemaProblems } = validate(ConfigSchema, input);
  // A value whose variable is missing was left as written; its schema errors would be noise.
  const unresolved = new Set(earlier.map((problem) => JSON.stringify(problem.path)));
  const problems = [
    ...earlier,
    ...schemaProblems.filter((problem) => !unresolved.has(JSON.stringify(problem.path))),
  ];
  const live = value.grafanaLive;
  if (live && !problems.some((problem) => problem.path[0] === 'grafanaLive')) {
    if (Boolean(live.token) === Boolean(live.tokenFile)) {
      problems.push({ path: ['grafanaLive'], message: 'set exactly one of token and tokenFile' });
    }
  }
  const redis = value.redis;
  if (redis && !problems.some((problem) => problem.path[0] === 'redis')) {
    try {
      parseRedisUrl(redis.url);
    } catch (error) {
      problems.push({ path: ['redis', 'url'], message: (error as Error).message });
    }
  }
  const datasets: DatasetSpec[] = [];
  if (isPlainObject(input) && Array.isArray(input['datasets'])) {
    problems.push(...duplicateNames(input['datasets']));
    value.datasets.forEach((dataset, index) => {
      // Cross-field checks need well-typed values: run them on datasets the schema accepted.
      if (problems.some((problem) => problem.path[0] === 'datasets' && problem.path[1] === index)) return;
      const path = ['datasets', index] as const;
      const datasetProblems = checkDataset(dataset, path);
      problems.push(...datasetProblems);
      if (datasetProblems.length === 0) {
        try {
          datasets.push(resolveDataset(dataset));
        } catch (error) {
          problems.push(resolveProblem(error, dataset.name, path));
        }
      }
    });
  }
  // Absent only when the file is not a mapping at all, which is a problem of its own.
  const leaseTtlMs = value.lease ? parseDuration(value.lease.ttl) : LEASE_TTL_MIN_MS;
  if (leaseTtlMs < LEASE_TTL_MIN_MS)
    problems.push({
      path: ['lease', 'ttl'],
      message: `must be at least ${formatDuration(LEASE_TTL_MIN_MS)}`,
    });
  if (problems.length > 0) {
    throw new ConfigError(problems.map((problem) => `${label(problem.path)}: ${problem.message}`));
  }
  return {
    server: value.server,
    redis: value.redis ?? null,
    lease: { ttlMs: leaseTtlMs },
    grafanaLive: value.grafanaLive ?? null,
    datasets,
    source,
  };
}

function duplicateNames(datasets: unknown[]): Problem[] {
  const first = new Map<unknown, number>();
  const problems: Problem[] = [];
  datasets.forEach((dataset, index) => {
    const name = isPlainObject(dataset) ? dataset['name'] : undefined;
    if (typeof name !== 'string') return;
    const earlier = first.get(name);
    if (earlier === undefined) first.set(name, index);
    else
      problems.push({
        path: ['datasets', index, 'name'],
        message: `${show(name)} is already used by datasets[${earlier}]`,
      });
  });
  return problems;
}

function checkDataset(dataset: RawDataset, path: KeyPath): Problem[] {
  const problems: Problem[] = [];
  const problem = (key: KeyPath, message: string) => problems.push({ path: [...path, ...key], message });
  const { source } = dataset;
  if (source.kind === 'postgres') {
    if (source.table === undefined && source.query === undefined)
      problem(['source'], 'needs a table or a query');
    if (source.table !== undefined && source.query !== undefined) {
      problem(['source'], 'has both table and query; keep one');
    }
    if (source.mode === 'cdc' && source.query !== undefined)
      problem(['source', 'query'], 'mode cdc replicates a table: set table instead of query');
  }
  if (source.kind === 'http') {
    const sync = { lagMs: parseDuration(dataset.sync.lag), lookbackMs: parseDuration(dataset.sync.lookback) };
    for (const found of httpSourceProblems(source, sync)) problem(found.path, found.message);
  }
  const resolution = parseDuration(dataset.resolution);
  const interval = parseDuration(dataset.sync.interval);
  if (resolution === 0) problem(['resolution'], 'must be longer than 0');
  if (interval === 0) problem(['sync', 'interval'], 'must be longer than 0');
  if (parseDuration(dataset.staleAfter) <= interval) {
    problem(['staleAfter'], `must be longer than sync.interval (${formatDuration(interval)})`);
  }
  if (parseDuration(dataset.retention) < resolution) {
    problem(['retention'], `must be at least the resolution (${formatDuration(resolution)})`);
  }
  problems.push(...reconcileProblems(dataset, path));
  return problems;
}

/** resolveDataset names a dataset `datasets.<name>`; point at it the way every other problem does. */
function resolveProblem(error: unknown, name: string, path: KeyPath): Problem {
  const message = error instanceof Error ? error.message : String(error);
  const match = /^datasets\.[^.:\s]+((?:\.[A-Za-z0-9_]+)*): (.*)$/s.exec(message);
  if (match && message.startsWith(`datasets.${name}`)) {
    const keys = (match[1] ?? '').split('.').filter((key) => key !== '');
    return { path: [...path, ...keys], message: match[2] ?? message };
  }
  return { path, message };
}
