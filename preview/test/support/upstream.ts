import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Pool } from 'pg';

export const DATABASE_URL = process.env['TEST_DATABASE_URL'] ?? 'postgres://root@127.0.0.1:5432/test';

export interface EventRow {
  ts: Date;
  country: string;
  device?: string;
  amount: number;
  durationMs?: number;
  userId?: string;
}

/**
 * The upstream the tests control: a `events` table in a fresh PostgreSQL schema, reached by the
 * service through a TCP relay the test can cut (the upstream "stops": connections are refused
 * and open ones drop) and restore.
 */
export class Upstream {
  readonly schema = `preview_e2e_${randomBytes(4).toString('hex')}`;
  readonly table = `${this.schema}.events`;
  private readonly pool = new Pool({ connectionString: DATABASE_URL, max: 2 });
  readonly relay = new TcpRelay(new URL(DATABASE_URL));

  /** The URL the service is given: PostgreSQL through the relay. */
  serviceUrl(): string {
    const url = new URL(DATABASE_URL);
    url.hostname = '127.0.0.1';
    url.port = String(this.relay.port);
    return url.toString();
  }

  async create(): Promise<void> {
    await this.pool.query(`CREATE SCHEMA ${this.schema}`);
    await this.pool.query(`
      CREATE TABLE ${this.table} (
        id bigserial PRIMARY KEY,
        ts timestamptz NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        deleted_at timestamptz,
        country text NOT NULL,
        device text NOT NULL DEFAULT 'desktop',
        amount numeric NOT NULL,
        duration_ms numeric NOT NULL DEFAULT 100,
        user_id text NOT NULL DEFAULT 'u1'
      )`);
    await this.relay.start();
  }

  async insert(rows: EventRow[]): Promise<void> {
    for (const row of rows) {
      await this.pool.query(
        `INSERT INTO ${this.table} (ts, country, device, amount, duration_ms, user_id) VALUES ($1, $2, $3, $4, $5, $6)`,
        [row.ts, row.country, row.device ?? 'desktop', row.amount, row.durationMs ?? 100, row.userId ?? 'u1'],
      );
    }
  }

  /** Renames the table, as a migration would: until `restore()` the service's source has no table to read. */
  async rename(): Promise<{ restore: () => Promise<void> }> {
    const gone = `${this.table.split('.')[1]}_gone`;
    await this.pool.query(`ALTER TABLE ${this.table} RENAME TO ${gone}`);
    return {
      restore: async () => {
        await this.pool.query(`ALTER TABLE ${this.schema}.${gone} RENAME TO events`);
      },
    };
  }

  /**
   * Holds an exclusive lock on the table until the returned function is called: every read of
   * it (a sync run, a resync) waits meanwhile, and fails at its statement timeout.
   */
  async lock(): Promise<() => Promise<void>> {
    const client = await this.pool.connect();
    await client.query('BEGIN');
    await client.query(`LOCK TABLE ${this.table} IN ACCESS EXCLUSIVE MODE`);
    return async () => {
      await client.query('ROLLBACK');
      client.release();
    };
  }

  async drop(): Promise<void> {
    await this.relay.stop();
    await this.pool.query(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`).catch(() => undefined);
    await this.pool.end();
  }
}

/** A TCP relay to a server: `stop()` refuses new connections and drops open ones; `start()` serves again on the same port. */
export class TcpRelay {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: URL) {}

  async start(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => {
      const upstream = net.connect(Number(this.target.port || 5432), this.target.hostname);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
