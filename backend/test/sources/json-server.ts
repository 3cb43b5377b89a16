import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/*
 * json-server (npm), the fake REST API the issue measured the HTTP source against: `_gte`
 * filters, `_sort`/`_order`, `_page` with RFC 8288 Link headers, `_start`/`_limit`, PATCH and
 * DELETE. It runs in this process on a free port, its db file in a temp folder.
 */

type Handler = (req: { method: string; path: string }, res: unknown, next: () => void) => void;

interface App {
  use(handler: Handler | Handler[]): void;
  listen(port: number, host: string, ready: () => void): Server;
}

/** The parts of lowdb's lodash chains used here. */
interface Collection<T> {
  find(match: Partial<T>): { assign(patch: Partial<T>): { write(): unknown } };
  remove(match: Partial<T>): { write(): unknown };
  value(): T[];
}

interface JsonServerModule {
  create(): App;
  router(file: string): Handler & { db: { get<T>(name: string): Collection<T> } };
  defaults(options: { logger: boolean }): Handler[];
}

const jsonServer = createRequire(__filename)('json-server') as JsonServerModule;

export class JsonServer<T extends { id: number }> {
  private server: Server | null = null;
  private folder: string | null = null;
  private router: ReturnType<JsonServerModule['router']> | null = null;
  /** Runs before json-server answers each GET of the collection: changes made here race the reader. */
  onRead: (() => void) | null = null;
  url = '';

  constructor(private readonly collection: string) {}

  async start(rows: T[]): Promise<void> {
    this.folder = mkdtempSync(join(tmpdir(), 'livesync-json-server-'));
    const file = join(this.folder, 'db.json');
    writeFileSync(file, JSON.stringify({ [this.collection]: rows }));
    const app = jsonServer.create();
    this.router = jsonServer.router(file);
    app.use(jsonServer.defaults({ logger: false }));
    app.use((req, _res, next) => {
      if (req.method === 'GET' && req.path === `/${this.collection}`) this.onRead?.();
      next();
    });
    app.use(this.router);
    await new Promise<void>((resolve) => {
      this.server = app.listen(0, '127.0.0.1', resolve);
    });
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/${this.collection}`;
  }

  /** Every record as json-server holds it now. */
  rows(): T[] {
    return this.router!.db.get<T>(this.collection).value();
  }

  /** A change made directly in json-server's database, as another client's PATCH would. */
  patch(id: number, patch: Partial<T>): void {
    this.router!.db.get<T>(this.collection)
      .find({ id } as Partial<T>)
      .assign(patch)
      .write();
  }

  /** A record removed directly in json-server's database, as another client's DELETE would. */
  remove(id: number): void {
    this.router!.db.get<T>(this.collection)
      .remove({ id } as Partial<T>)
      .write();
  }

  /**
   * A change through json-server's REST API, as a client of it makes one (POST to the
   * collection, PATCH or DELETE of the record `id`); resolves with the status.
   */
  async send(method: 'POST' | 'PATCH' | 'DELETE', id: number | null, body?: Partial<T>): Promise<number> {
    const response = await fetch(id === null ? this.url : `${this.url}/${id}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    await response.body?.cancel();
    return response.status;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    if (this.folder) rmSync(this.folder, { recursive: true, force: true });
  }
}
