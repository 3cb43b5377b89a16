import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
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
    this.process = await startShell(
      `${this.niceness === 0 ? '' : `nice -n ${this.niceness} `}redis-server "$@" & pid=$!; cat > /dev/null; kill -9 "$pid"; wait "$pid"; exit 0`,
      args,
      { name: 'redis-server', output: 'stdout', ready: 'Ready to accept connections', timeoutMs: 10_000 },
    );
  }

  /** Kills the server (SIGKILL: like a crash) and resolves once it has exited. */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = null;
    await endShell(child);
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

/**
 * A throwaway PostgreSQL cluster (initdb into a temp folder) on a free port, with its own
 * settings (`wal_level=logical` by default, which the shared server must never be given).
 * Superuser `root`, trust authentication, database `postgres`. Run as root (as CI does),
 * initdb and postgres run as the `postgres` OS user, which PostgreSQL requires. Like
 * ThrowawayRedis, it is stopped as soon as its shell's stdin closes; `restart()` keeps the data.
 */
export class ThrowawayPostgres {
  private process: ChildProcess | null = null;
  private dir = '';
  port = 0;

  constructor(private readonly settings: Record<string, string> = { wal_level: 'logical' }) {}

  get url(): string {
    return `postgres://root@127.0.0.1:${this.port}/postgres`;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    if (!this.dir) this.initdb();
    const args = [
      '-D',
      join(this.dir, 'data'),
      '-p',
      String(this.port),
      '-k',
      this.dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      ...Object.entries(this.settings).flatMap(([key, value]) => ['-c', `${key}=${value}`]),
    ];
    // SIGINT to the postmaster's own pid (runuser would not pass it on): a fast shutdown, which keeps the data.
    this.process = await startShell(
      `${asPostgres(postgresBin('postgres'))} "$@" & pid=$!; cat > /dev/null; ` +
        `kill -INT "$(head -n 1 "$2/postmaster.pid")"; wait "$pid"; exit 0`,
      args,
      {
        name: 'postgres',
        output: 'stderr',
        ready: 'database system is ready to accept connections',
        timeoutMs: 30_000,
      },
    );
  }

  /** Stops the server (a fast shutdown) and keeps its data. */
  async halt(): Promise<void> {
    const child = this.process;
    this.process = null;
    await endShell(child);
  }

  async restart(): Promise<void> {
    await this.halt();
    await this.start();
  }

  /** Stops the server and removes its folder. */
  async stop(): Promise<void> {
    await this.halt();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = '';
  }

  private initdb(): void {
    this.dir = mkdtempSync(join(tmpdir(), 'livesync-pg-'));
    chmodSync(this.dir, 0o700);
    if (runningAsRoot()) {
      const { uid, gid } = postgresUser();
      chownSync(this.dir, uid, gid);
    }
    const initdb = `${asPostgres(postgresBin('initdb'))} -D "$1" -U root --auth=trust -E UTF8 --no-sync --no-instructions`;
    execFileSync('sh', ['-c', initdb, 'sh', join(this.dir, 'data')], { stdio: 'pipe' });
  }
}

/**
 * Starts a server under a small shell `script` (given `args`) that stops it as soon as the
 * shell's stdin closes; resolves once `ready` appears on its `output`.
 */
async function startShell(
  script: string,
  args: string[],
  options: { name: string; output: 'stdout' | 'stderr'; ready: string; timeoutMs: number },
): Promise<ChildProcess> {
  const child = spawn('sh', ['-c', script, 'sh', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stream = child[options.output]!;
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => fail(new Error(`${options.name} did not start in ${options.timeoutMs / 1000} s:\n${output}`)),
      options.timeoutMs,
    );
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.stdin!.end();
      reject(err);
    };
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      if (!output.includes(options.ready)) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.removeAllListeners('error');
      // Later output (a shutdown's) must not run this again: it would drop the listeners of a stop.
      stream.off('data', read);
      resolve();
    };
    child.once('error', fail);
    child.once('exit', (code) =>
      fail(new Error(`${options.name} exited (${code}) before ready:\n${output}`)),
    );
    stream.on('data', read);
  });
  // Keep draining its output so the pipe never fills.
  child.stdout!.resume();
  child.stderr!.resume();
  return child;
}

/** Closes the shell's stdin, which stops its server, and resolves once it has exited. */
async function endShell(child: ChildProcess | null): Promise<void> {
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

function runningAsRoot(): boolean {
  return process.getuid?.() === 0;
}

/** PostgreSQL refuses to run as root: as root, its programs run as the `postgres` user. */
function asPostgres(command: string): string {
  return runningAsRoot() ? `runuser -u postgres -- ${command}` : command;
}

function postgresUser(): { uid: number; gid: number } {
  const [uid, gid] = execFileSync('sh', ['-c', 'id -u postgres; id -g postgres'])
    .toString()
    .trim()
    .split('\n');
  return { uid: Number(uid), gid: Number(gid) };
}

/** The newest installed PostgreSQL's program (Debian keeps them in /usr/lib/postgresql/<version>/bin). */
function postgresBin(name: string): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((version) => existsSync(join(root, version, 'bin', name)))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  return versions.length > 0 ? join(root, versions[0]!, 'bin', name) : name;
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
