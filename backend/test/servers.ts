import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/*
 * Servers of a test's own, with nothing but Node's own modules, so the preview's tests use them too.
 */

/**
 * A throwaway redis-server on a free port, without persistence: a restart loses everything.
 * It runs under a small shell that kills it (SIGKILL, like a crash) as soon as its stdin
 * closes: on `stop()`, and also when this process dies without cleaning up, so a killed test
 * run never leaves a server behind.
 */
export class ThrowawayRedis {
  private process: ChildProcess | null = null;
  port = 0;

  /**
   * `settings`: more redis-server arguments, e.g. ['--slowlog-log-slower-than', '10000'];
   * `niceness`: run it at this priority when allowed (timing tests raise it, so that other
   * work on a busy machine delays it less).
   */
  constructor(
    private readonly settings: string[] = [],
    private readonly niceness = 0,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      ...this.settings,
    ];
    const child = spawn(
      'sh',
      [
        '-c',
        `${this.niceness === 0 ? '' : `nice -n ${this.niceness} `}redis-server "$@" & pid=$!; cat > /dev/null; kill -9 "$pid"; wait "$pid"; exit 0`,
        'sh',
        ...args,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.process = child;
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(
        () => fail(new Error(`redis-server did not start in 10 s:\n${output}`)),
        10_000,
      );
      const fail = (err: Error) => {
        clearTimeout(timer);
        child.stdin!.end();
        reject(err);
      };
      child.once('error', fail);
      child.once('exit', (code) => fail(new Error(`redis-server exited (${code}) before ready:\n${output}`)));
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          child.removeAllListeners('exit');
          child.removeAllListeners('error');
          resolve();
        }
      });
    });
    // Keep draining its output so the pipe never fills.
    child.stdout!.resume();
    child.stderr!.resume();
  }

  /** Kills the server (SIGKILL: like a crash) and resolves once it has exited. */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin!.end();
    await exited;
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
