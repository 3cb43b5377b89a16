import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from '../../scripts/serve';

/**
 * A redis-server of the test's own on a free port, without persistence, so the test may
 * FLUSHALL it (never a shared server). It runs under a small shell that kills it as soon as
 * its stdin closes: on `stop()`, and also when the test process dies without cleaning up.
 */
export class ThrowawayRedis {
  private child: ChildProcess | undefined;
  port = 0;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    const child = spawn(
      'sh',
      [
        '-c',
        'redis-server "$@" & pid=$!; cat > /dev/null; kill -9 "$pid"; wait "$pid"; exit 0',
        'sh',
        ...args,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(
        () => fail(new Error(`redis-server did not start in 10 s:\n${output}`)),
        10_000,
      );
      const fail = (err: Error) => {
        clearTimeout(timer);
        child.stdin?.end();
        reject(err);
      };
      child.once('error', fail);
      child.once('exit', (code) => fail(new Error(`redis-server exited (${code}) before ready:\n${output}`)));
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (!output.includes('Ready to accept connections')) return;
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.removeAllListeners('error');
        resolve();
      });
    });
    // Keep draining its output so the pipe never fills.
    child.stdout?.resume();
    child.stderr?.resume();
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin?.end();
    await exited;
  }
}
