/**
 * Every command the docs give (README.md, plugin/README.md, the header of
 * backend/livesync.example.yaml) is run here as written, is run by .ci/run, or is listed below as
 * not run, with the reason and the test that checks what it does. A command in the docs that is
 * none of these fails the first test, so the docs cannot drift from what runs.
 *
 * "As written" allows exactly two substitutions, both checked to be present: the port (a free one,
 * through `PORT` or in a copy of the config file) and the URLs of PostgreSQL and Redis (a
 * throw-away database and a Redis database of this run's own). Services are started the way the
 * docs say, `npm start` from the repository root, which builds first.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { deleteKeys, PG_URL, REDIS_URL } from '../helpers';
import { freePort } from '../servers';

const ROOT = resolve(__dirname, '../../..');
const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

// ---------------------------------------------------------------------------------------------
// Finding the commands

interface DocCommand {
  file: string;
  command: string;
}

const SHELL_FENCES = new Set(['sh', 'bash', 'shell', 'console']);
/** Inline code that is a command: optional `VAR=value` words, then a program. */
const COMMAND_SPAN =
  /^(?:[A-Z][A-Z0-9_]*=\S*\s+)*(?:npm|npx|node|docker|curl|psql|redis-cli|bash|sh|cp|git)\s/;

/**
 * Splits shell text into top-level pieces joined by `&&`, dropping `#` comments; `open` when a
 * quote is still open at the end (the command goes on on the next line).
 */
function scan(text: string): { open: boolean; parts: string[] } {
  let quote = '';
  let part = '';
  const parts: string[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote === "'") {
      part += c;
      if (c === "'") quote = '';
    } else if (quote === '"') {
      part += c;
      if (c === '\\') part += text[++i] ?? '';
      else if (c === '"') quote = '';
    } else if (c === '\\') {
      part += c + (text[++i] ?? '');
    } else if (c === "'" || c === '"') {
      quote = c;
      part += c;
    } else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      const end = text.indexOf('\n', i);
      i = end === -1 ? text.length : end - 1;
    } else if (c === '&' && text[i + 1] === '&') {
      parts.push(part);
      part = '';
      i++;
    } else {
      part += c;
    }
  }
  parts.push(part);
  return { open: quote !== '', parts: parts.map((piece) => piece.trim()).filter(Boolean) };
}

/** The commands of a shell script, one per line unless a quote or a trailing `\` carries it on. */
function shellCommands(script: string): string[] {
  const commands: string[] = [];
  let current = '';
  for (const line of script.split('\n')) {
    current = current === '' ? line : `${current}\n${line}`;
    if (/\\$/.test(current) || scan(current).open) continue;
    commands.push(...scan(current).parts);
    current = '';
  }
  if (current.trim() !== '') throw new Error(`a command never ends: ${current}`);
  return commands;
}

/** Fenced shell blocks and inline code that is a command, in a Markdown file. */
function markdownCommands(file: string): DocCommand[] {
  const text = read(file);
  const fence = /^( *)```(\w*)\n([\s\S]*?)^\1```/gm;
  const commands: string[] = [];
  for (const [, indent, lang, body] of text.matchAll(fence)) {
    if (!SHELL_FENCES.has(lang!)) continue;
    const dedented = body!
      .split('\n')
      .map((line) => line.slice(Math.min(indent!.length, line.length - line.trimStart().length)))
      .join('\n');
    commands.push(...shellCommands(dedented));
  }
  for (const [, code] of text.replace(fence, '').matchAll(/`([^`]+)`/g)) {
    const span = code!.replace(/\s+/g, ' ').trim();
    if (COMMAND_SPAN.test(`${span} `)) commands.push(...scan(span).parts);
  }
  return commands.map((command) => ({ file, command }));
}

/** The header comment of the example config: commands are the lines indented under `#`. */
function exampleHeaderCommands(): DocCommand[] {
  const file = 'backend/livesync.example.yaml';
  const header: string[] = [];
  for (const line of read(file).split('\n')) {
    if (!line.startsWith('#')) break;
    header.push(line);
  }
  return header
    .filter((line) => /^#\s{3,}\S/.test(line))
    .flatMap((line) => scan(line.replace(/^#\s+/, '')).parts)
    .map((command) => ({ file, command }));
}

function docCommands(): DocCommand[] {
  return [
    ...markdownCommands('README.md'),
    ...markdownCommands('plugin/README.md'),
    ...exampleHeaderCommands(),
  ];
}

// ---------------------------------------------------------------------------------------------
// Where each command runs

const README_POSTGRES_START = 'REDIS_URL=redis://127.0.0.1:6379/0 npm start';
const README_POSTGRES_DDL = 'psql "$DATABASE_URL" -f provisioning/postgres/init/01-events.sql';
const EXAMPLE_DATABASE_URL = 'postgres://user:password@127.0.0.1:5432/analytics';
const EXAMPLE_START = `DATABASE_URL=${EXAMPLE_DATABASE_URL} ORDERS_API_TOKEN=token LIVESYNC_CONFIG=backend/livesync.example.yaml npm start`;

type Coverage =
  /** Run by a test in this file, as written (but for the port and the URLs). */
  | { by: 'this test' }
  /**
   * Run by a line of .ci/run that is `ci` (with any options after it); `through` when that line
   * runs the command by running the script in every workspace.
   */
  | { by: '.ci/run'; ci: string; through?: { workspace: string; script: string } }
  /** Run nowhere: why, and the file whose tests check what the command does instead. */
  | { by: 'nobody'; why: string; checkedIn: string; mentions: string };

const COVERAGE: [string | RegExp, Coverage][] = [
  ['npm ci', { by: '.ci/run', ci: 'npm ci' }],
  ['npm start', { by: 'this test' }],
  [/^curl -s http:\/\/127\.0\.0\.1:3001\//, { by: 'this test' }],
  [README_POSTGRES_DDL, { by: 'this test' }],
  [README_POSTGRES_START, { by: 'this test' }],
  [EXAMPLE_START, { by: 'this test' }],
  ['npm run build', { by: 'this test' }],
  ['npm run build -w plugin', { by: 'this test' }],
  ['npm test', { by: '.ci/run', ci: 'npm test' }],
  ['npm run lint', { by: '.ci/run', ci: 'npm run lint' }],
  ['npm run typecheck', { by: '.ci/run', ci: 'npm run typecheck' }],
  ['npm run e2e', { by: '.ci/run', ci: 'npm run e2e' }],
  ['npm run test:go', { by: '.ci/run', ci: 'npm run test:go' }],
  ['npm test -w plugin', { by: '.ci/run', ci: 'npm test', through: { workspace: 'plugin', script: 'test' } }],
  [
    'npm run typecheck -w plugin',
    { by: '.ci/run', ci: 'npm run typecheck', through: { workspace: 'plugin', script: 'typecheck' } },
  ],
  [
    'npm run bench',
    {
      by: 'nobody',
      why: 'it loads 1,000,000 rows into PostgreSQL and runs for minutes on every core; .ci/run leaves it out',
      checkedIn: 'BENCHMARKS.md',
      mentions: 'npm run bench',
    },
  ],
  [
    'BENCH_ROWS=10000000 npm run bench',
    {
      by: 'nobody',
      why: 'it loads 10,000,000 rows into PostgreSQL and runs for many minutes; it is run once, by hand',
      checkedIn: 'BENCHMARKS-10M.md',
      mentions: '10,000,000 rows',
    },
  ],
  [
    'npm run screenshots',
    {
      by: 'nobody',
      why: 'it rewrites the committed screenshots in docs/img/; it is the e2e run, which .ci/run runs as npm run e2e',
      checkedIn: 'preview/test/e2e.test.ts',
      mentions: '--update-docs-img',
    },
  ],
  [
    'npm run generate -w dashboards',
    {
      by: 'nobody',
      why: 'it rewrites the committed dashboards/json; npm test runs the same generator in-process and compares',
      checkedIn: 'dashboards/test/dashboards.test.ts',
      mentions: 'npm run generate -w dashboards',
    },
  ],
  [
    /^docker compose /,
    {
      by: 'nobody',
      why: 'Docker does not run on the machines this is developed and tested on (the README says so)',
      checkedIn: 'dashboards/test/compose.test.ts',
      mentions: 'docker-compose.yml',
    },
  ],
];

function coverageOf(command: string): Coverage | undefined {
  return COVERAGE.find(([pattern]) =>
    typeof pattern === 'string' ? pattern === command : pattern.test(command),
  )?.[1];
}

/** The commands run below, as they appear in the docs. */
const ran = new Set<string>();

// ---------------------------------------------------------------------------------------------
// Running them

/** The environment of a shell a person opens: none of the test runner's or npm's variables, no service settings. */
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const dropped =
    /^(npm_|NODE_ENV$|INIT_CWD$|JEST_|LIVESYNC_|LOG_LEVEL$|LOG_FORMAT$|REDIS_URL$|DATABASE_URL$|PORT$|HOST$)/;
  for (const [name, value] of Object.entries(process.env)) if (!dropped.test(name)) env[name] = value;
  return { ...env, ...extra };
}

/** The command with each `from` replaced by its `to`; every `from` must be in it. */
function substitute(command: string, pairs: [string, string][]): string {
  let result = command;
  for (const [from, to] of pairs) {
    if (!result.includes(from)) throw new Error(`expected ${from} in: ${command}`);
    result = result.split(from).join(to);
  }
  return result;
}

function docCommand(file: string, test: (command: string) => boolean): string {
  const found = new Set(
    docCommands()
      .filter((entry) => entry.file === file && test(entry.command))
      .map((entry) => entry.command),
  );
  if (found.size !== 1)
    throw new Error(`${file}: expected one such command, found ${[...found].join(' | ') || 'none'}`);
  return [...found][0]!;
}

/** Runs a command that ends, from the repository root, through bash. */
function runToEnd(
  command: string,
  options: { substitute?: [string, string][]; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): { status: number | null; stdout: string; output: string } {
  const result = spawnSync('bash', ['-c', substitute(command, options.substitute ?? [])], {
    cwd: ROOT,
    env: userEnv(options.env),
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 120_000,
  });
  ran.add(command);
  return { status: result.status, stdout: result.stdout, output: `${result.stdout}\n${result.stderr}` };
}

interface Service {
  url: string;
  output: () => string;
  stop: () => Promise<void>;
}

/** Starts a command that runs the service and waits until it says it listens on `port`. */
async function startService(
  command: string,
  port: number,
  options: { substitute?: [string, string][]; env?: NodeJS.ProcessEnv } = {},
): Promise<Service> {
  const child: ChildProcess = spawn('bash', ['-c', substitute(command, options.substitute ?? [])], {
    cwd: ROOT,
    env: userEnv(options.env),
    // Its own process group: npm, its shell and node are stopped together.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  ran.add(command);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  let running = true;
  void exited.then(() => (running = false));
  const stop = async () => {
    if (!running) return;
    process.kill(-child.pid!, 'SIGTERM');
    const timer = setTimeout(() => running && process.kill(-child.pid!, 'SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 180_000;
  while (!output.includes(`LiveSync listening on ${url}`)) {
    if (!running || Date.now() > deadline) {
      await stop();
      throw new Error(`${command}: never said it listens on ${url}:\n${output}`);
    }
    await sleep(100);
  }
  return { url, output: () => output, stop };
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Polls `probe` until it returns a value, for up to `timeoutMs`. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(250);
  }
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

interface DatasetStatus {
  state: string;
  records: number;
  reconcile: { lastPass: { startedAt: number; checked: number } | null; nextPassAt: number | null } | null;
}

async function datasetStatus(service: Service, name: string): Promise<DatasetStatus> {
  const { status, body } = await getJson(`${service.url}/api/datasets/${name}`);
  if (status !== 200) throw new Error(`GET /api/datasets/${name}: ${status}`);
  return body['status'] as DatasetStatus;
}

interface Frame {
  schema: { fields: { name: string; labels?: Record<string, string> }[] };
  data: { values: unknown[][] };
}

/** The sum of one field over every frame and row of a metrics query over the whole table. */
async function total(service: Service, dataset: string, field: string): Promise<number> {
  const now = Date.now();
  const response = await fetch(`${service.url}/api/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-cache-skip': 'true' },
    body: JSON.stringify({
      range: { from: now - 8 * 3_600_000, to: now + 3_600_000 },
      intervalMs: 86_400_000,
      maxDataPoints: 10,
      queries: [{ refId: 'A', dataset, aggregations: [field] }],
    }),
  });
  const body = (await response.json()) as { results: Record<string, { frames: Frame[] }> };
  let sum = 0;
  for (const frame of body.results['A']!.frames) {
    const index = frame.schema.fields.findIndex((candidate) => candidate.name === field);
    for (const value of frame.data.values[index] ?? []) sum += Number(value ?? 0);
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------

describe('the commands in the docs', () => {
  const commands = docCommands();

  it('are found: the quick start, the checks, the plugin and the example config', () => {
    const files = new Set(commands.map((entry) => entry.file));
    expect(files).toEqual(new Set(['README.md', 'plugin/README.md', 'backend/livesync.example.yaml']));
    expect(commands.map((entry) => entry.command)).toEqual(
      expect.arrayContaining(['npm ci', 'npm start', 'npm test', 'npm run bench', EXAMPLE_START]),
    );
    expect(commands.filter((entry) => entry.command.startsWith('curl '))).toHaveLength(2);
  });

  it('are each run here, run by .ci/run, or excluded with a reason', () => {
    const unaccounted = commands.filter((entry) => coverageOf(entry.command) === undefined);
    expect(unaccounted).toEqual([]);
    const unused = COVERAGE.filter(([pattern]) =>
      commands.every((entry) =>
        typeof pattern === 'string' ? entry.command !== pattern : !pattern.test(entry.command),
      ),
    ).map(([pattern]) => String(pattern));
    expect(unused).toEqual([]);
  });

  it('that .ci/run runs are in .ci/run, directly or through every workspace', () => {
    const ci = read('.ci/run')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    const scripts = (file: string) =>
      (JSON.parse(read(file)) as { scripts?: Record<string, string> }).scripts ?? {};
    for (const { command } of commands) {
      const coverage = coverageOf(command);
      if (coverage?.by !== '.ci/run') continue;
      expect({
        command,
        ci: ci.filter((line) => line === coverage.ci || line.startsWith(`${coverage.ci} `)),
      }).toEqual({
        command,
        ci: [expect.any(String)],
      });
      if (coverage.through) {
        const { workspace, script } = coverage.through;
        const rootScript = coverage.ci === 'npm test' ? 'test' : coverage.ci.replace(/^npm run /, '');
        expect(scripts('package.json')[rootScript]).toContain(`npm run ${script} --workspaces`);
        expect(scripts(`${workspace}/package.json`)[script]).toEqual(expect.any(String));
      }
    }
  });

  it('that run nowhere name where what they do is checked', () => {
    for (const { command } of commands) {
      const coverage = coverageOf(command);
      if (coverage?.by !== 'nobody') continue;
      expect({ command, why: coverage.why.length > 20 }).toEqual({ command, why: true });
      expect(existsSync(join(ROOT, coverage.checkedIn))).toBe(true);
      expect(read(coverage.checkedIn)).toContain(coverage.mentions);
    }
  });
});

describe('building, as the docs say', () => {
  it('npm run build -w plugin', () => {
    const result = runToEnd(
      docCommand('plugin/README.md', (command) => command === 'npm run build -w plugin'),
    );
    expect(result).toMatchObject({ status: 0 });
    expect(existsSync(join(ROOT, 'plugin/dist/module.js'))).toBe(true);
  });

  it('npm run build', () => {
    const result = runToEnd(docCommand('README.md', (command) => command === 'npm run build'));
    expect(result).toMatchObject({ status: 0 });
    for (const file of ['backend/dist/main.js', 'plugin/dist/plugin.json', 'preview/dist/server.cjs']) {
      expect(existsSync(join(ROOT, file))).toBe(true);
    }
  });
});

describe('README quick start: npm start, then curl', () => {
  let service: Service;
  let port: number;

  beforeAll(async () => {
    expect(read('README.md')).toMatch(/It prints its URL,\s+`http:\/\/127\.0\.0\.1:3001`/);
    port = await freePort();
    service = await startService(
      docCommand('README.md', (command) => command === 'npm start'),
      port,
      { env: { PORT: String(port) } },
    );
  }, 200_000);

  afterAll(async () => {
    await service?.stop();
  }, 30_000);

  const curl = (path: string) =>
    docCommand('README.md', (command) => command.startsWith(`curl -s http://127.0.0.1:3001${path}`));
  const asWritten = (command: string) =>
    runToEnd(command, {
      substitute: [['http://127.0.0.1:3001', `http://127.0.0.1:${port}`]],
      timeoutMs: 30_000,
    });

  it('prints its URL', () => {
    expect(service.output()).toContain(`LiveSync listening on http://127.0.0.1:${port}`);
  });

  it('curl /api/datasets: the demo dataset', () => {
    const result = asWritten(curl('/api/datasets'));
    expect(result.status).toBe(0);
    const body = JSON.parse(result.stdout) as { datasets: Record<string, unknown>[] };
    expect(body.datasets).toEqual([
      expect.objectContaining({
        name: 'demo',
        source: { kind: 'demo' },
        dimensions: ['country', 'device', 'page'],
        metrics: ['amount', 'duration_ms'],
        status: expect.objectContaining({ state: expect.any(String) }),
      }),
    ]);
  });

  it('curl /api/query: count and sum(amount) by country, one frame per country', async () => {
    const command = curl('/api/query');
    const body = await until('the demo history in the answer', async () => {
      const result = asWritten(command);
      expect(result.status).toBe(0);
      const answer = JSON.parse(result.stdout) as { results: { A: { frames: Frame[] } } };
      return answer.results.A.frames.length > 1 ? answer : undefined;
    });
    for (const frame of body.results.A.frames) {
      expect(frame.schema.fields.map((field) => field.name)).toEqual(['time', 'count', 'sum(amount)']);
      expect(frame.schema.fields[1]!.labels).toEqual({ country: expect.any(String) });
      expect(frame.data.values[0]!.length).toBeGreaterThan(0);
    }
  });

  it('serves the preview at its URL', async () => {
    const response = await fetch(`${service.url}/`);
    expect(response.status).toBe(200);
    expect(new URL(response.url).pathname).toBe('/preview/');
    expect(response.headers.get('content-type')).toContain('text/html');
  });

  it('logs no line per request at the default level', () => {
    expect(service.output()).not.toMatch(/incoming request|request completed/);
  });
});

describe('README: syncing a PostgreSQL table, and the example config', () => {
  const database = `lstest_docs_${randomBytes(5).toString('hex')}`;
  const databaseUrl = (() => {
    const url = new URL(PG_URL);
    url.pathname = `/${database}`;
    return url.toString();
  })();
  /**
   * Two Redis databases of their own: the service's key prefix is fixed (`livesync`), so each run
   * takes databases that are empty, and afterwards deletes only the `livesync:` keys its own
   * services wrote there. Nothing that was there before is ever touched.
   */
  let readmeDb: number | undefined;
  let exampleDb: number | undefined;
  const redisUrl = (db: number) => {
    const url = new URL(REDIS_URL);
    url.pathname = `/${db}`;
    return url.toString();
  };
  async function emptyDatabases(count: number): Promise<number[]> {
    const free: number[] = [];
    const start = Math.floor(Math.random() * 15);
    for (let i = 0; i < 15 && free.length < count; i++) {
      const index = 1 + ((start + i) % 15);
      const redis = new Redis(redisUrl(index));
      try {
        if ((await redis.dbsize()) === 0) free.push(index);
      } finally {
        redis.disconnect();
      }
    }
    if (free.length < count) throw new Error('the docs test needs two empty Redis databases among 1-15');
    return free;
  }
  const admin = new Client({ connectionString: PG_URL });
  let db: Client;

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    db = new Client({ connectionString: databaseUrl });
    await db.connect();
    [readmeDb, exampleDb] = await emptyDatabases(2);
  });

  afterAll(async () => {
    await db?.end();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    for (const index of [readmeDb, exampleDb])
      if (index !== undefined) await deleteKeys(redisUrl(index), 'livesync:*');
  }, 30_000);

  const count = async (sql: string): Promise<number> => Number((await db.query(sql)).rows[0].count);

  describe('psql "$DATABASE_URL" -f …/01-events.sql, then npm start with REDIS_URL', () => {
    let service: Service;

    beforeAll(async () => {
      const ddl = runToEnd(
        docCommand('README.md', (command) => command === README_POSTGRES_DDL),
        {
          env: { DATABASE_URL: databaseUrl },
        },
      );
      expect(ddl).toMatchObject({ status: 0 });
      expect(ddl.output).not.toMatch(/ERROR/);
      const port = await freePort();
      service = await startService(
        docCommand('README.md', (command) => command === README_POSTGRES_START),
        port,
        {
          substitute: [['redis://127.0.0.1:6379/0', redisUrl(readmeDb!)]],
          env: { DATABASE_URL: databaseUrl, PORT: String(port) },
        },
      );
    }, 200_000);

    afterAll(async () => {
      await service?.stop();
    }, 30_000);

    it('creates public.events with its updated_at trigger, and the service syncs it into Redis', async () => {
      expect(await count('SELECT count(*) FROM public.events')).toBe(10_800);
      expect(service.output()).toMatch(/"store":\{"kind":"redis"/);
      expect(service.output()).toContain('"datasets":["events (postgres)"]');
      await until('the backfill', async () =>
        (await datasetStatus(service, 'events')).records === 10_800 ? true : undefined,
      );
    });

    it('sees an update: the trigger moves updated_at forward', async () => {
      const before = await total(service, 'events', 'sum(amount)');
      await db.query('UPDATE events SET amount = amount + 1000 WHERE id = 1');
      await until('the update', async () =>
        Math.abs((await total(service, 'events', 'sum(amount)')) - (before + 1000)) < 0.005
          ? true
          : undefined,
      );
    });

    it('sees an insert and a soft delete', async () => {
      await db.query(
        `INSERT INTO events (ts, country, device, amount, duration_ms, user_id) VALUES (now(), 'US', 'mobile', 1, 1, 'u')`,
      );
      await until('the insert', async () =>
        (await datasetStatus(service, 'events')).records === 10_801 ? true : undefined,
      );
      await db.query('UPDATE events SET deleted_at = now() WHERE id = 2');
      await until('the soft delete', async () =>
        (await datasetStatus(service, 'events')).records === 10_800 ? true : undefined,
      );
    });

    it('sees a plain DELETE only at the next reconciliation pass, hourly by default, as the README says', async () => {
      expect(read('README.md')).toMatch(
        /a plain `DELETE`\s+is seen by the next reconciliation pass, hourly by default/,
      );
      // The first pass starts once the backfill has caught up; the next one is an hour after it.
      const first = await until('the first reconciliation pass', async () => {
        const { reconcile } = await datasetStatus(service, 'events');
        return reconcile?.lastPass ?? undefined;
      });
      expect(first.checked).toBeGreaterThanOrEqual(10_800);
      expect((await datasetStatus(service, 'events')).reconcile?.nextPassAt).toBe(
        first.startedAt + 3_600_000,
      );
      await db.query('DELETE FROM events WHERE id = 3');
      // A change committed after the DELETE: once it is synced, the cursor had its chance.
      await db.query(
        `INSERT INTO events (ts, country, device, amount, duration_ms, user_id) VALUES (now(), 'DE', 'tablet', 1, 1, 'v')`,
      );
      await until('the insert after the DELETE', async () =>
        (await datasetStatus(service, 'events')).records === 10_801 ? true : undefined,
      );
      expect(await count('SELECT count(*) FROM events WHERE deleted_at IS NULL')).toBe(10_800);
    }, 120_000);
  });

  describe('the example config, started as its header says', () => {
    let service: Service;
    let dir: string;

    beforeAll(async () => {
      const port = await freePort();
      const example = read('backend/livesync.example.yaml');
      expect(example).toContain('\n  port: 3001\n');
      // A copy that differs only in its port.
      dir = mkdtempSync(join(tmpdir(), 'livesync-docs-'));
      writeFileSync(join(dir, 'livesync.yaml'), example.replace('\n  port: 3001\n', `\n  port: ${port}\n`));
      service = await startService(
        docCommand('backend/livesync.example.yaml', () => true),
        port,
        {
          substitute: [
            [EXAMPLE_DATABASE_URL, databaseUrl],
            [
              'LIVESYNC_CONFIG=backend/livesync.example.yaml',
              `LIVESYNC_CONFIG=${join(dir, 'livesync.yaml')}`,
            ],
          ],
          env: { REDIS_URL: redisUrl(exampleDb!) },
        },
      );
    }, 200_000);

    afterAll(async () => {
      await service?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }, 30_000);

    it('is the command in the header', () => {
      expect(docCommand('backend/livesync.example.yaml', () => true)).toBe(EXAMPLE_START);
    });

    it('starts with its three datasets and syncs public.events', async () => {
      const { status, body } = await getJson(`${service.url}/api/datasets`);
      expect(status).toBe(200);
      expect((body['datasets'] as { name: string }[]).map((dataset) => dataset.name)).toEqual([
        'events',
        'orders',
        'demo',
      ]);
      const live = await count('SELECT count(*) FROM events WHERE deleted_at IS NULL');
      await until('the backfill of events', async () =>
        (await datasetStatus(service, 'events')).records === live ? true : undefined,
      );
    });
  });
});

describe('afterwards', () => {
  it('ran every command it says it runs', () => {
    const claimed = docCommands()
      .filter((entry) => coverageOf(entry.command)?.by === 'this test')
      .map((entry) => entry.command);
    expect(claimed.filter((command) => !ran.has(command))).toEqual([]);
  });
});
