import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

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
    // Its exit code too: an 'exit' event was seen to go missing after a cluster failover.
    const exited = new Promise<void>((resolve) => {
      const done = () => {
        clearInterval(poll);
        resolve();
      };
      const poll = setInterval(() => {
        if (child.exitCode !== null || child.signalCode !== null) done();
      }, 50);
      child.once('exit', done);
    });
    child.stdin!.end();
    await exited;
  }
}

/**
 * A throwaway Redis Cluster: `masters` masters with one replica each, every node a
 * ThrowawayRedis (no persistence, SIGKILLed on stop) with its cluster state in a temporary
 * directory. A short `nodeTimeoutMs` makes a replica take over a killed master within a few
 * seconds. `url` names every node as a redis+cluster:// URL.
 */
export class ThrowawayCluster {
  readonly nodes: ThrowawayRedis[] = [];
  private dir = '';

  constructor(
    private readonly masters = 3,
    private readonly nodeTimeoutMs = 1_000,
  ) {}

  get url(): string {
    return `redis+cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  async start(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'ls-cluster-'));
    for (let i = 0; i < this.masters * 2; i++) {
      const node = new ThrowawayRedis([
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${i}.conf`,
        '--cluster-node-timeout',
        String(this.nodeTimeoutMs),
        '--repl-diskless-sync-delay',
        '0',
        '--dir',
        this.dir,
      ]);
      this.nodes.push(node);
      await node.start();
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...this.nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ]);
    await this.waitHealthy(this.nodes);
    // A replica takes over only with its master's data: wait until each has it.
    await this.until('every replica in sync with its master', async () => {
      const roles = await Promise.all(
        this.nodes.map((n) => run('redis-cli', ['-p', String(n.port), 'info', 'replication'])),
      );
      const replicas = roles.filter((info) => info.includes('role:slave'));
      return (
        replicas.length === this.masters && replicas.every((info) => info.includes('master_link_status:up'))
      );
    });
  }

  /** Kills the node on `port` (SIGKILL: a crash) and resolves once it has exited. */
  async kill(port: number): Promise<void> {
    const node = this.nodes.find((n) => n.port === port);
    if (!node) throw new Error(`no node of this cluster listens on ${port}`);
    await node.stop();
  }

  /**
   * Waits until each of `nodes` says `cluster_state:ok` with every slot served, and sees
   * every slot served by one of `nodes`: the cluster has settled (after a create, or after a
   * kill and the failover it brings: pass the nodes still running).
   */
  async waitHealthy(nodes: ThrowawayRedis[], timeoutMs = 30_000): Promise<void> {
    const running = new Set(nodes.map((n) => `127.0.0.1:${n.port}`));
    let last = '';
    await this.until(
      'the cluster to settle',
      async () => {
        const views = await Promise.all(
          nodes.map(async (n) => {
            const port = String(n.port);
            const info = await run('redis-cli', ['-p', port, 'cluster', 'info']).catch(
              (e: Error) => e.message,
            );
            const table = await run('redis-cli', ['-p', port, 'cluster', 'nodes']).catch(
              (e: Error) => e.message,
            );
            return { info, table };
          }),
        );
        last = views.map((v) => `${v.info}\n${v.table}`).join('\n---\n');
        const ok = views.every(
          ({ info, table }) =>
            info.includes('cluster_state:ok') &&
            info.includes('cluster_slots_ok:16384') &&
            servingMasters(table).every((address) => running.has(address)),
        );
        return ok;
      },
      timeoutMs,
      () => last,
    );
  }

  /** Polls `check` every 100 ms until it holds; past the deadline, fails saying what it waited for. */
  private async until(
    what: string,
    check: () => Promise<boolean>,
    timeoutMs = 30_000,
    detail = () => '',
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline)
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${detail()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** The addresses of the masters that serve slots in a CLUSTER NODES table, as host:port. */
function servingMasters(table: string): string[] {
  return table
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f.length > 8 && f[2]!.split(',').includes('master') && !f[2]!.includes('fail'))
    .map((f) => f[1]!.split('@')[0]!);
}

async function run(command: string, args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(command, args, { timeout: 30_000 });
  return stdout;
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
