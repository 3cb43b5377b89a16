import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../servers';

/**
 * The real service (src/main.ts) in a process of its own, on a config file written to a
 * temporary directory: the multi-replica tests start two or three of them on one Redis, and
 * SIGKILL, SIGSTOP and SIGCONT them; the bench puts them behind a round-robin.
 */
export class ServiceProcess {
  private child: ChildProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'livesync-replica-'));
  port = 0;
  /** Everything the process wrote (JSON log lines), for a failing test's message. */
  output = '';

  /** `config`: the whole configuration but `server.port`, which is taken from a free port. */
  constructor(private readonly config: Record<string, unknown>) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    const server = { ...(this.config['server'] as object), host: '127.0.0.1', port: this.port };
    const file = join(this.dir, 'livesync.yaml');
    writeFileSync(file, stringify({ ...this.config, server }));
    const backend = join(__dirname, '../..');
    const child = spawn(process.execPath, ['-r', '@swc-node/register', join(backend, 'src/main.ts')], {
      cwd: backend,
      env: { ...process.env, LIVESYNC_CONFIG: file, LOG_FORMAT: 'json', LIVESYNC_PREVIEW: 'off' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the service exited (${child.exitCode}):\n${this.output}`);
      const live = await fetch(`${this.url}/api/health/live`).catch(() => null);
      if (live?.ok) return;
      if (Date.now() > deadline) throw new Error(`the service did not listen within 60 s:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  /** SIGKILL, like a crash; resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT'); // a stopped process takes SIGKILL too, but say so plainly
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM: the graceful shutdown (the lease is given up); SIGKILL after 15 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  async get<T = Record<string, unknown>>(path: string): Promise<T> {
    const response = await fetch(`${this.url}${path}`);
    if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }

  async post<T = Record<string, unknown>>(
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> {
    const response = await fetch(`${this.url}${path}`, {
      method: 'POST',
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    return { status: response.status, body: (await response.json()) as T };
  }
}
