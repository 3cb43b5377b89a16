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

/** The message of the permanent error that a response of these records causes. */
async function refusal(records: unknown[]): Promise<string> {
  handler = (_url, _req, res) => json(res, { records });
  const err = await failure(source({}).fetch({ after: null, limit: 10 }));
  expect(err.errorClass).toBe('permanent');
  return err.message;
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

/** A page of an API whose `since` takes a cursor or its own token (`tok:<offset>`), and the next token. */
function tokenPage(rows: Row[], url: URL): { page: Row[]; next: string | null } {
  const token = url.searchParams.get('since') ?? '';
  const offset = token.startsWith('tok:')
    ? Number(token.slice(4))
    : rows.findIndex((r) => r.cursor >= Number(token || 0));
  const page = rows.slice(offset, offset + limitOf(url));
  return { page, next: offset + page.length < rows.length ? `tok:${offset + page.length}` : null };
}
const ids = (records: { id: string }[]) => records.map((record) => Number(record.id));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('HttpSource', () => {
  it('follows cursor pagination and maps nested fields', async () => {
    const rows = upstream(25);
    handler = (url, _req, res) => {
      const { page, next } = tokenPage(rows, url);
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
    expect(fetches).toBe(2);
    // Every query is anchored at the last record read; the token only carries on within a tie.
    expect(requests.map((url) => url.searchParams.get('since'))).toEqual([null, '10', '19']);
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

  it("follows the API's token within more records sharing one cursor than a page holds", async () => {
    const rows = upstream(25, (i) => (i <= 15 ? 1 : i));
    handler = (url, _req, res) => {
      const { page, next } = tokenPage(rows, url);
      json(res, { records: page, next });
    };
    const { records } = await drain(source({ pagination: { kind: 'cursor', nextPath: 'next' } }), 5);
    expect(ids(records)).toEqual(range(1, 25));
    // Within the 15 records at cursor 1, the token; after them, queries anchored at the last record again.
    expect(requests.map((url) => url.searchParams.get('since'))).toEqual([
      null,
      '1',
      'tok:5',
      'tok:10',
      'tok:15',
      '20',
      '24',
    ]);
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

  it('gives up for the run, as transient, when the pages of a tie never hold still', async () => {
    const rows = upstream(200, () => 1);
    let served = 0;
    // Every request sees the tie shifted back by one more record, as if one joined it each time.
    handler = (url, _req, res) => {
      const page = Number(url.searchParams.get('page'));
      const from = Math.max(0, (page - 1) * limitOf(url) + 100 - served++);
      json(res, { records: rows.slice(from, from + limitOf(url)) });
    };
    const src = source({});
    const first = await src.fetch({ after: null, limit: 10 });
    const err = await failure(src.fetch({ after: first.last, limit: 10 }));
    expect(err.errorClass).toBe('transient');
    expect(err.message).toBe(
      'events: records sharing the cursor "1" kept moving between pages while they were read (20 scans); ' +
        'reading from the last complete position on the next run',
    );
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
    const message = await refusal([
      { id: 2, time: 1, cursor: 5 },
      { id: 1, time: 1, cursor: 5 },
    ]);
    expect(message).toBe(
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

/** Instants in nanoseconds, parsed here on their own so the test does not trust the code it tests. */
function nanosOf(text: string): bigint {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!match) throw new Error(`not RFC 3339: ${text}`);
  const fraction = (match[2] ?? '').padEnd(9, '0').slice(0, 9);
  return BigInt(Date.parse(`${match[1]}${match[3]}`)) * 1_000_000n + BigInt(fraction);
}

/** RFC 3339 as different APIs print it: Go's RFC3339Nano (trimmed), nine digits, offsets. */
function printed(nanos: bigint, style: number): string {
  const offsetMinutes = [0, 0, 120, -330][style % 4]!;
  const seconds = nanos / 1_000_000_000n;
  const local = new Date(Number(seconds) * 1000 + offsetMinutes * 60_000).toISOString().slice(0, 19);
  const digits = (nanos % 1_000_000_000n).toString().padStart(9, '0');
  const fraction = style % 4 === 1 || style % 4 === 3 ? digits : digits.replace(/0+$/, '');
  const hours = String(Math.floor(Math.abs(offsetMinutes) / 60)).padStart(2, '0');
  const offset =
    offsetMinutes === 0
      ? 'Z'
      : `${offsetMinutes < 0 ? '-' : '+'}${hours}:${String(Math.abs(offsetMinutes) % 60).padStart(2, '0')}`;
  return `${local}${fraction ? `.${fraction}` : ''}${offset}`;
}

describe('HttpSource cursor types', () => {
  const BASE = 1_704_067_200_000_000_000n;
  // 2,000 records in groups of three sharing an instant: whole seconds, .25, .5, .75 and a nanosecond past.
  const rows = Array.from({ length: 2000 }, (_, i) => {
    const group = BigInt(Math.floor(i / 3));
    const nanos = BASE + group * 250_000_000n + (group % 4n === 3n ? 1n : 0n);
    return { id: i + 1, time: Number(nanos / 1_000_000n), cursor: printed(nanos, i), nanos };
  });

  /** An API that compares instants, as a Go service would, with keyset on (cursor, after_id). */
  function serveInstants(url: URL, res: ServerResponse): void {
    const since = url.searchParams.get('since');
    const afterId = url.searchParams.get('after_id');
    const from = since === null ? null : nanosOf(since);
    const rest = rows.filter(
      (row) =>
        from === null ||
        row.nanos > from ||
        (row.nanos === from && (afterId === null || row.id > Number(afterId))),
    );
    json(res, { records: rest.slice(0, limitOf(url)).map(({ id, time, cursor }) => ({ id, time, cursor })) });
  }

  it('the spellings used here sort differently as text than as instants', () => {
    const asText = [...rows].sort((a, b) => (a.cursor < b.cursor ? -1 : 1)).map((row) => row.id);
    expect(asText).not.toEqual(rows.map((row) => row.id));
  });

  it.each([7, 50, 500])('reads 2,000 records of mixed RFC 3339 spellings in batches of %i', async (limit) => {
    handler = (url, _req, res) => serveInstants(url, res);
    const { records } = await drain(source({ pagination: { kind: 'none' }, idParam: 'after_id' }), limit);
    expect(ids(records)).toEqual(range(1, 2000));
  });

  it('reads them with offset paging within ties, the cursor type inferred', async () => {
    handler = (url, _req, res) => {
      const from = nanosOf(url.searchParams.get('since') ?? printed(0n, 0));
      const rest = rows.filter((row) => row.nanos >= from);
      const offset = Number(url.searchParams.get('offset'));
      json(res, {
        records: rest
          .slice(offset, offset + limitOf(url))
          .map(({ id, time, cursor }) => ({ id, time, cursor })),
      });
    };
    const { records } = await drain(source({ pagination: { kind: 'offset', offsetParam: 'offset' } }), 2);
    expect(ids(records)).toEqual(range(1, 2000));
  });

  it('holds an inferred type: a cursor of another type is an error naming it', async () => {
    const message = await refusal([
      { id: 1, time: 1, cursor: '2024-01-01T00:00:05Z' },
      { id: 2, time: 1, cursor: 1_704_067_206 },
    ]);
    expect(message).toBe(
      'events: record 1 of the response has a cursor "1704067206" that is not an RFC 3339 timestamp ' +
        '(cursorType timestamp, inferred from the first cursor seen)',
    );
  });

  it('refuses a JSON number cursor beyond 2^53, which parsing already rounded', async () => {
    handler = (_url, _req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"records": [{"id": 1, "time": 1, "cursor": 1704067205123456789}]}');
    };
    const err = await failure(source({ cursorType: 'epoch_ns' }).fetch({ after: null, limit: 10 }));
    expect(err.message).toBe(
      'events: record 0 of the response has a "cursor" beyond 2^53, where JSON numbers lose digits: the API must send it as text',
    );
  });

  it('asks for a cursor type when a number cursor meets a lookback', async () => {
    handler = (_url, _req, res) => json(res, { records: [{ id: 1, time: 1, cursor: 17 }] });
    const config_ = config({});
    const src = new HttpSource(specFor(config_, { lookbackMs: 30_000 }), config_);
    const err = await failure(src.fetch({ after: null, limit: 10 }));
    expect(err.origin).toBe('config');
    expect(err.message).toContain(
      'is a number, and sync.lag and sync.lookback are durations: declare source.cursorType',
    );
  });

  describe.each([
    ['timestamp', (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z')],
    ['epoch_ms', (ms: number) => ms],
    ['epoch_s', (ms: number) => ms / 1000],
  ] as const)('a %s cursor', (cursorType, spell) => {
    const NOW = 1_704_067_300_000;
    const times = [NOW - 10_000, NOW - 3_000, NOW - 1_000];

    it('is read only up to now - lag, the rest on a later run', async () => {
      handler = (url, _req, res) => {
        const after = Number(url.searchParams.get('after_id') ?? 0);
        json(res, {
          records: times
            .map((ms, i) => ({ id: i + 1, time: ms, cursor: spell(ms) }))
            .filter((r) => r.id > after),
        });
      };
      let now = NOW;
      const config_ = config({ cursorType, pagination: { kind: 'none' }, idParam: 'after_id' });
      const src = new HttpSource(specFor(config_, { lagMs: 2_000, lookbackMs: 0 }), config_, {
        now: () => now,
      });
      const first = await src.fetch({ after: null, limit: 10 });
      expect([ids(first.records), first.done]).toEqual([[1, 2], true]);
      now += 2_000;
      const second = await src.fetch({ after: first.last, limit: 10 });
      expect(ids(second.records)).toEqual([3]);
    });

    it('is moved back by the lookback, in its own unit and spelling', async () => {
      handler = (_url, _req, res) => json(res, { records: [] });
      const config_ = config({ cursorType });
      const src = new HttpSource(specFor(config_, { lookbackMs: 5_000 }), config_);
      await src.fetch({ after: { cursor: String(spell(NOW)), id: '1' }, rewindMs: 5_000, limit: 10 });
      expect(requests[0]?.searchParams.get('since')).toBe(String(spell(NOW - 5_000)));
    });
  });
});

describe('HttpSource Link paging', () => {
  it('follows rel="next" in a tie, resolved against the request, and checks rel="prev"', async () => {
    const rows = upstream(9, (i) => (i <= 6 ? 1 : i));
    handler = (url, _req, res) => {
      const page = Number(url.searchParams.get('page') ?? 1);
      const limit = limitOf(url);
      const rest = since(rows, url);
      const links = [
        page > 1
          ? `<?since=${url.searchParams.get('since') ?? ''}&limit=${limit}&page=${page - 1}>; rel="prev"`
          : '',
        page * limit < rest.length
          ? `<events?since=${url.searchParams.get('since') ?? ''}&limit=${limit}&page=${page + 1}>; rel="next"`
          : '',
      ].filter(Boolean);
      res.writeHead(200, { 'content-type': 'application/json', link: links.join(', ') });
      res.end(JSON.stringify({ records: rest.slice((page - 1) * limit, page * limit) }));
    };
    const { records } = await drain(source({ pagination: { kind: 'link' } }), 2);
    expect(ids(records)).toEqual(range(1, 9));
    // A tie of six records at cursor 1 is read by its Link pages, each proven by its rel="prev".
    expect(
      requests.map((url) => [url.searchParams.get('since'), url.searchParams.get('page')]),
    ).toContainEqual(['1', '3']);
  });

  it('refuses a next page on another origin, which would take the headers there', async () => {
    handler = (_url, _req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        link: '<http://elsewhere.test/events?page=2>; rel="next"',
      });
      res.end(JSON.stringify({ records: upstream(2, () => 1) }));
    };
    const src = source({ pagination: { kind: 'link' }, headers: { authorization: 'Bearer t' } });
    const first = await src.fetch({ after: null, limit: 2 });
    const err = await failure(src.fetch({ after: first.last, limit: 2 }));
    expect(err.origin).toBe('config');
    expect(err.message).toBe(
      `events: a page the Link header names is on http://elsewhere.test, not ${base}; the configured headers are only sent to ${base}`,
    );
  });
});
