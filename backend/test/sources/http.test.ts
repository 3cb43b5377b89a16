import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpSourceConfig } from '../../src/config/schema';
import { HttpSource } from '../../src/sources/http';
import { SourceError } from '../../src/sources/types';
import { drain, specFor } from './helpers';

type Handler = (url: URL, req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let base: string;
let handler: Handler;
/** Every request the server saw, for assertions on the parameters the source sent. */
let requests: URL[];
let lastHeaders: IncomingMessage['headers'];

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    requests.push(url);
    lastHeaders = req.headers;
    handler(url, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
beforeEach(() => {
  requests = [];
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function json(res: ServerResponse, body: unknown, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function config(overrides: Partial<HttpSourceConfig>): HttpSourceConfig {
  return {
    kind: 'http',
    url: `${base}/events`,
    cursorParam: 'since',
    limitParam: 'limit',
    recordsPath: 'records',
    pagination: { kind: 'page', pageParam: 'page' },
    fields: {},
    headers: {},
    timeout: '5s',
    id: 'id',
    time: 'time',
    cursor: 'cursor',
    ...overrides,
  };
}

function source(overrides: Partial<HttpSourceConfig>, dimensions: string[] = [], metrics: string[] = []) {
  // Numeric cursors are sequences here: no lag, no lookback.
  return new HttpSource(
    specFor(config(overrides), { dimensions, metrics, lookbackMs: 0 }),
    config(overrides),
  );
}

async function failure(promise: Promise<unknown>): Promise<SourceError> {
  const err = await promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
  if (!(err instanceof SourceError)) throw err;
  return err;
}

/** An upstream of `count` records; `cursorOf(i)` lets several share a cursor. */
function upstream(count: number, cursorOf = (i: number) => i) {
  return Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    time: 1_700_000_000_000 + i * 1000,
    cursor: cursorOf(i + 1),
  }));
}

type Row = ReturnType<typeof upstream>[number];

/** Records with cursor >= since, in (cursor, id) order: what the source expects of an API. */
function since(rows: Row[], url: URL): Row[] {
  const from = url.searchParams.get('since');
  return rows.filter((row) => from === null || row.cursor >= Number(from));
}

const limitOf = (url: URL) => Number(url.searchParams.get('limit'));
const ids = (records: { id: string }[]) => records.map((record) => Number(record.id));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('HttpSource', () => {
  it('follows cursor pagination and maps nested fields', async () => {
    const rows = upstream(25);
    handler = (url, _req, res) => {
      const token = url.searchParams.get('since') ?? '';
      const offset = token.startsWith('tok:')
        ? Number(token.slice(4))
        : rows.findIndex((r) => r.cursor >= Number(token || 0));
      const page = rows.slice(offset, offset + limitOf(url));
      const next = offset + page.length < rows.length ? `tok:${offset + page.length}` : null;
      json(res, {
        data: {
          items: page.map((r) => ({
            key: r.id,
            at: new Date(r.time).toISOString(),
            meta: { rev: r.cursor, gone: r.id === 7 },
            geo: { country: r.id % 2 ? 'DE' : 'US' },
            money: { amount: r.id / 2 },
          })),
        },
        paging: { next },
      });
    };
    const src = source(
      {
        recordsPath: 'data.items',
        pagination: { kind: 'cursor', nextPath: 'paging.next' },
        deleted: 'deleted',
        fields: {
          id: 'key',
          time: 'at',
          cursor: 'meta.rev',
          deleted: 'meta.gone',
          country: 'geo.country',
          amount: 'money.amount',
        },
      },
      ['country'],
      ['amount'],
    );
    const { records, fetches } = await drain(src, 10);
    expect(ids(records)).toEqual(range(1, 25));
    expect(fetches).toBe(3);
    // After the first request, the API's own token carries on, batch after batch.
    expect(requests.map((url) => url.searchParams.get('since'))).toEqual([null, 'tok:10', 'tok:20']);
    expect(records[6]).toEqual({
      id: '7',
      time: 1_700_000_006_000,
      cursor: '7',
      deleted: true,
      dims: ['DE'],
      metrics: [3.5],
      distinct: [],
    });
    expect(records.filter((r) => r.deleted)).toHaveLength(1);
  });

  it('resumes from a position it did not read itself by asking for its cursor', async () => {
    const rows = upstream(12, (i) => Math.ceil(i / 4));
    handler = (url, _req, res) => json(res, { records: since(rows, url).slice(0, limitOf(url)), next: null });
    const src = source({ pagination: { kind: 'cursor', nextPath: 'next' } });
    const { records } = await drain(src, 10, { cursor: '2', id: '6' });
    expect(requests[0]?.searchParams.get('since')).toBe('2');
    expect(ids(records)).toEqual(range(7, 12));
  });

  it('in page mode, anchors every query at the last record read', async () => {
    const rows = upstream(23);
    handler = (url, _req, res) => {
      const page = Number(url.searchParams.get('p'));
      const limit = limitOf(url);
      json(res, { records: since(rows, url).slice((page - 1) * limit, page * limit) });
    };
    const { records } = await drain(source({ pagination: { kind: 'page', pageParam: 'p' } }), 10, {
      cursor: '3',
      id: '3',
    });
    expect(ids(records)).toEqual(range(4, 23));
    // A page number only ever counts pages of one cursor value; see the tie tests.
    expect(requests.map((url) => [url.searchParams.get('since'), url.searchParams.get('p')])).toEqual([
      ['3', '1'],
      ['12', '1'],
      ['21', '1'],
    ]);
  });

  it('with idParam, continues after the last id within a cursor value', async () => {
    const rows = upstream(30, () => 1);
    handler = (url, _req, res) => {
      const after = url.searchParams.get('after_id');
      const rest = since(rows, url).filter((r) => after === null || r.cursor > 1 || r.id > Number(after));
      json(res, { records: rest.slice(0, limitOf(url)) });
    };
    const { records } = await drain(source({ pagination: { kind: 'none' }, idParam: 'after_id' }), 10);
    expect(ids(records)).toEqual(range(1, 30));
    expect(requests.map((url) => url.searchParams.get('after_id'))).toEqual([null, '10', '20', '30']);
  });

  it('refuses at construction an API shape that cannot read past a large tie', () => {
    expect(() => source({ pagination: { kind: 'none' } })).toThrow(
      'datasets.events.source.pagination: kind none with no idParam cannot read past more records sharing one cursor value',
    );
  });

  it('fails permanently rather than loop when the API ignores its paging parameters', async () => {
    const rows = upstream(15, () => 1);
    handler = (url, _req, res) => json(res, { records: since(rows, url).slice(0, limitOf(url)) });
    const src = source({ pagination: { kind: 'none' }, idParam: 'after_id' });
    const first = await src.fetch({ after: null, limit: 10 });
    expect(first.done).toBe(false);
    const err = await failure(src.fetch({ after: first.last, limit: 10 }));
    expect(err.errorClass).toBe('permanent');
    expect(err.message).toContain('does not honour the paging parameters');
  });

  it('refuses records out of (cursor, id) order', async () => {
    handler = (_url, _req, res) =>
      json(res, {
        records: [
          { id: 2, time: 1, cursor: 5 },
          { id: 1, time: 1, cursor: 5 },
        ],
      });
    const err = await failure(source({}).fetch({ after: null, limit: 10 }));
    expect(err.errorClass).toBe('permanent');
    expect(err.message).toBe(
      'events: record 1 of the response (cursor "5", id "1") does not come after the one before it ' +
        '(cursor "5", id "2"): the API must return records sorted by cursor, then id, each once',
    );
  });

  it('accepts epoch milliseconds or ISO 8601 time and text or number ids', async () => {
    handler = (_url, _req, res) =>
      json(res, {
        records: [
          { id: 'a', time: 1_700_000_000_123.7, cursor: 1 },
          { id: 2, time: '2024-01-01T00:00:00.250Z', cursor: 2 },
          { id: 'c', time: '1700000000000', cursor: '3' },
        ],
      });
    const { records } = await drain(source({}), 10);
    expect(records.map((r) => [r.id, r.time, r.cursor])).toEqual([
      ['a', 1_700_000_000_123, '1'],
      ['2', 1_704_067_200_250, '2'],
      ['c', 1_700_000_000_000, '3'],
    ]);
  });

  it('rewinds a date-time cursor and keeps what it re-reads', async () => {
    const at = (s: number) => `2024-01-01T00:00:${String(s).padStart(2, '0')}.000Z`;
    const rows = [1, 5, 9, 10].map((s) => ({ id: s, time: s * 1000, cursor: at(s) }));
    handler = (url, _req, res) =>
      json(res, { records: rows.filter((r) => r.cursor >= (url.searchParams.get('since') ?? '')) });
    const result = await source({}).fetch({
      after: { cursor: at(10), id: '10' },
      limit: 10,
      rewindMs: 5_000,
    });
    expect(requests[0]?.searchParams.get('since')).toBe(at(5));
    expect(ids(result.records)).toEqual([5, 9, 10]);
  });

  it('names the field and record of an invalid record', async () => {
    handler = (_url, _req, res) =>
      json(res, {
        records: [
          { id: 1, time: 1, cursor: 1 },
          { time: 2, cursor: 2 },
        ],
      });
    const missing = await failure(source({}).fetch({ after: null, limit: 10 }));
    expect(missing.errorClass).toBe('permanent');
    expect(missing.message).toBe('events: record 1 of the response has no "id"');

    handler = (_url, _req, res) => json(res, { records: [{ id: 1, time: 'yesterday', cursor: 1 }] });
    const invalid = await failure(source({}).fetch({ after: null, limit: 10 }));
    expect(invalid.message).toBe('events: record 0 of the response has an invalid "time": "yesterday"');
  });

  it('sends the configured headers and keeps their values out of errors', async () => {
    handler = (_url, _req, res) => json(res, { error: 'nope' }, 401);
    const src = source({
      headers: { authorization: 'Bearer s3cr3t-t0ken' },
      url: `${base}/events?key=s3cr3t-k3y`,
    });
    const err = await failure(src.fetch({ after: null, limit: 10 }));
    expect(lastHeaders.authorization).toBe('Bearer s3cr3t-t0ken');
    expect(err.errorClass).toBe('permanent');
    expect(err.message).toBe(`events: GET ${base}/events responded 401 Unauthorized`);
    expect(`${err.message} ${err.stack}`).not.toMatch(/s3cr3t/);
  });

  it.each([
    [500, 'transient'],
    [503, 'transient'],
    [429, 'transient'],
    [404, 'permanent'],
    [403, 'permanent'],
  ])('classifies status %i as %s', async (status, errorClass) => {
    handler = (_url, _req, res) => json(res, {}, status);
    const err = await failure(source({}).fetch({ after: null, limit: 10 }));
    expect(err.errorClass).toBe(errorClass);
    // A wrong URL or refused credentials are the dataset's configuration to fix.
    expect(err.origin).toBe(status === 404 || status === 403 ? 'config' : 'upstream');
    expect(err.message).toContain(`responded ${status}`);
  });

  it('times out as transient', async () => {
    let arrived!: () => void;
    const seen = new Promise<void>((resolve) => (arrived = resolve));
    handler = () => arrived(); // never answers
    const err = await failure(source({ timeout: '200ms' }).fetch({ after: null, limit: 10 }));
    await seen;
    expect(err.errorClass).toBe('transient');
    expect(err.message).toBe(`events: GET ${base}/events timed out after 200 ms`);
  });

  it('reports a refused connection as transient', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/events`;
    await new Promise((resolve) => closed.close(resolve));
    const err = await failure(source({ url }).fetch({ after: null, limit: 10 }));
    expect(err.errorClass).toBe('transient');
    expect(err.message).toMatch(/^events: GET .* failed: fetch failed: .*ECONNREFUSED/);
  });

  it('reports a malformed body as permanent', async () => {
    handler = (_url, _req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"records": [');
    };
    const err = await failure(source({}).fetch({ after: null, limit: 10 }));
    expect(err.errorClass).toBe('permanent');
    expect(err.message).toMatch(/^events: GET .*\/events returned invalid JSON/);
  });

  it('reports a missing records array as permanent, naming the path', async () => {
    handler = (_url, _req, res) => json(res, { data: { rows: [] } });
    const err = await failure(source({ recordsPath: 'data.items' }).fetch({ after: null, limit: 10 }));
    expect(err.errorClass).toBe('permanent');
    expect(err.message).toBe('events: the response has no records array at "data.items"');
  });

  it('rejects with the reason of an aborted signal', async () => {
    handler = () => undefined;
    const controller = new AbortController();
    const pending = source({}).fetch({ after: null, limit: 10, signal: controller.signal });
    controller.abort(new Error('shutting down'));
    await expect(pending).rejects.toThrow('shutting down');
  });
});
