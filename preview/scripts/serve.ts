/**
 * Starts the real service (backend/dist/main.js, as `npm start` does) with a config file and
 * the preview served at its root. The browser tests start it through `startService`; run
 * directly (`npm run serve -w preview`) it serves the demo dataset with Grafana Live pushed to
 * the preview itself, so the plugin's Live path can be seen without a Grafana server.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'backend', 'dist', 'main.js');
const BUILT = [
  MAIN,
  path.join(ROOT, 'preview', 'dist', 'server.cjs'),
  path.join(ROOT, 'plugin', 'dist', 'module.js'),
];
/** The service's own output is kept for a failing test's report, up to this much. */
const OUTPUT_LIMIT = 256 * 1024;

export interface Service {
  /** The service's root, e.g. http://127.0.0.1:40123 (it redirects to the preview). */
  url: string;
  /** The preview page. */
  previewUrl: string;
  /** What the service printed so far (the end of it). */
  output(): string;
  stop(): Promise<void>;
}

/** A port nobody listens on right now (the service is told it in its config). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Runs the service with this configuration (YAML; JSON is YAML too) until `stop()`. Resolves
 * once it answers `/api/health/live`; rejects with its output if it exits or does not answer.
 */
export async function startService(options: {
  config: unknown;
  port: number;
  env?: NodeJS.ProcessEnv;
  startTimeoutMs?: number;
  /** Also print the service's output (the command-line use). */
  echo?: boolean;
}): Promise<Service> {
  const missing = BUILT.filter((file) => !existsSync(file));
  if (missing.length) throw new Error(`not built: ${missing.join(', ')}; run \`npm run build\` first`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'livesync-preview-'));
  const configFile = path.join(dir, 'livesync.yaml');
  await writeFile(configFile, JSON.stringify(options.config, null, 2));

  const child = spawn(process.execPath, [MAIN], {
    cwd: ROOT,
    env: {
      ...process.env,
      LIVESYNC_CONFIG: configFile,
      LIVESYNC_PREVIEW: 'on',
      LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'warn',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
    if (options.echo) process.stdout.write(chunk);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const url = `http://127.0.0.1:${options.port}`;
  const stop = async () => {
    await stopChild(child, exited);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForHealth(url, exited, options.startTimeoutMs ?? 20_000);
  } catch (err) {
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- service output ---\n${output}`);
  }
  return { url, previewUrl: `${url}/preview/`, output: () => output, stop };
}

async function waitForHealth(url: string, exited: Promise<number | null>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone: number | null | undefined;
  void exited.then((code) => {
    gone = code;
  });
  while (Date.now() < deadline) {
    if (gone !== undefined) throw new Error(`the service exited with code ${gone} before answering`);
    const ok = await fetch(`${url}/api/health/live`, { signal: AbortSignal.timeout(1000) })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the service did not answer ${url}/api/health/live within ${timeoutMs} ms`);
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 12_000);
  await exited;
  clearTimeout(timer);
}

/** The demo dataset of the embedded defaults, with Grafana Live pushed to the preview itself. */
export function demoConfig(port: number, token: string) {
  return {
    server: { host: '127.0.0.1', port },
    datasets: [
      {
        name: 'demo',
        source: { kind: 'demo' },
        dimensions: ['country', 'device', 'page'],
        metrics: ['amount', 'duration_ms'],
        distinct: ['user_id'],
        resolution: '1m',
        staleAfter: '2m',
        retention: '7d',
      },
    ],
    grafanaLive: { url: `http://127.0.0.1:${port}/preview`, token, streamId: 'livesync' },
  };
}

async function main(): Promise<void> {
  const port = Number(process.env['PORT'] ?? 3001);
  const token = randomBytes(16).toString('hex');
  const service = await startService({
    config: demoConfig(port, token),
    port,
    env: { LOG_LEVEL: 'info' },
    echo: true,
  });
  process.stdout.write(`LiveSync with its preview: ${service.url} (Grafana Live pushed to the preview)\n`);
  const shutdown = () => {
    void service.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
