import type { HttpSourceConfig } from '../../src/config/schema';
import { HttpSource } from '../../src/sources/http';
import type { SourceRecord } from '../../src/sources/types';
import { drain, specFor } from './helpers';
import { JsonServer } from './json-server';

interface Row {
  id: number;
  time: number;
  seq: number;
  amount: number;
  deleted: boolean;
}

let api: JsonServer<Row>;
/** The next change sequence number: every change moves a record to the end, as `updated_at` would. */
let nextSeq: number;

afterEach(async () => {
  await api.stop();
});

async function serve(count: number, seqOf = (id: number) => id): Promise<void> {
  api = new JsonServer<Row>('events');
  const rows = Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    time: 1_700_000_000_000 + i * 1000,
    seq: seqOf(i + 1),
    amount: i,
    deleted: false,
  }));
  nextSeq = Math.max(...rows.map((row) => row.seq)) + 1;
  await api.start(rows);
}

type Paging = 'page' | 'offset' | 'link';

/** json-server's own parameters: `seq_gte`, `_limit`, `_page` / `_start`, sorted by (seq, id). */
function source(paging: Paging): HttpSource {
  const pagination: HttpSourceConfig['pagination'] =
    paging === 'page'
      ? { kind: 'page', pageParam: '_page' }
      : paging === 'offset'
        ? { kind: 'offset', offsetParam: '_start' }
        : { kind: 'link' };
  const config: HttpSourceConfig = {
    kind: 'http',
    // json-server sends Link headers for _page requests only.
    url: `${api.url}?_sort=seq,id&_order=asc,asc${paging === 'link' ? '&_page=1' : ''}`,
    cursorParam: 'seq_gte',
    limitParam: '_limit',
    recordsPath: '',
    pagination,
    fields: {},
    headers: {},
    timeout: '10s',
    id: 'id',
    time: 'time',
    cursor: 'seq',
    cursorType: 'number',
    deleted: 'deleted',
  };
  return new HttpSource(specFor(config, { metrics: ['amount'], lookbackMs: 0 }), config);
}

/** A deterministic stream of record ids to change. */
function picker(seed: number, max: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return 1 + (state % max);
  };
}

/** What a reader that upserts by id holds after these records. */
function held(records: SourceRecord[]): Map<string, SourceRecord> {
  const byId = new Map<string, SourceRecord>();
  for (const record of records) byId.set(record.id, record);
  return byId;
}

/**
 * Every record json-server holds is held, in its last version (cursor, tombstone, metric), and
 * nothing else but the `removed` ones (a plain DELETE leaves nothing for a cursor to see).
 */
function expectSame(records: SourceRecord[], removed = 0): void {
  const byId = held(records);
  const want = api.rows().map((row) => [String(row.id), String(row.seq), row.deleted, row.amount]);
  const got = api.rows().map((row) => {
    const record = byId.get(String(row.id));
    return [String(row.id), record?.cursor, record?.deleted, record?.metrics[0]];
  });
  expect(got).toEqual(want);
  expect(byId.size).toBe(want.length + removed);
}

describe('HttpSource against json-server', () => {
  it.each<Paging>(['page', 'offset', 'link'])(
    '%s paging: records updated while 3,000 are read are all held in their last version',
    async (paging) => {
      await serve(3000);
      const pick = picker(7, 3000);
      let reads = 0;
      // Each read races 9 updates of random records, most of them on pages already read.
      api.onRead = () => {
        if (++reads > 20) return;
        for (let i = 0; i < 9; i++) api.patch(pick(), { seq: nextSeq++, amount: 10_000 + reads });
      };
      const { records } = await drain(source(paging), 100);
      expect(reads).toBeGreaterThan(20);
      expectSame(records);
    },
  );

  it.each<Paging>(['page', 'offset', 'link'])(
    '%s paging: 600 records sharing one cursor with batches of 500 are read through',
    async (paging) => {
      await serve(700, (id) => (id <= 600 ? 1 : id));
      const { records, fetches } = await drain(source(paging), 500);
      expect(new Set(records.map((record) => record.id)).size).toBe(700);
      expect(fetches).toBeLessThan(5);
      expectSame(records);
    },
  );

  it.each<Paging>(['page', 'offset', 'link'])(
    '%s paging: a tie larger than a page, its records updated or deleted under the scan, loses nothing',
    async (paging) => {
      await serve(1300, (id) => (id <= 1200 ? 1 : id));
      const pick = picker(3, 1200);
      let reads = 0;
      const removed = new Set<number>();
      // Records leave the tie (to a later cursor, or for good) while its pages are read: later ones shift forward.
      api.onRead = () => {
        if (++reads > 12) return;
        for (let i = 0; i < 3; i++) api.patch(pick(), { seq: nextSeq++ });
        const gone = pick();
        if (!removed.has(gone) && reads > 1) {
          removed.add(gone);
          api.remove(gone);
        }
      };
      const { records } = await drain(source(paging), 250);
      // A record removed before the scan reached it is not read; one removed after, is.
      const heldRemoved = [...removed].filter((id) => records.some((record) => record.id === String(id)));
      expectSame(records, heldRemoved.length);
    },
  );

  it('sees a tombstone and an update made between runs, through json-server PATCH', async () => {
    await serve(50);
    const src = source('page');
    const first = await drain(src, 20);
    for (const [id, patch] of [
      [7, { deleted: true, seq: nextSeq++ }],
      [9, { amount: 999, seq: nextSeq++ }],
    ] as const) {
      expect(await api.send('PATCH', id, patch)).toBe(200);
    }
    const second = await drain(src, 20, first.last);
    expect(second.records.map((record) => [record.id, record.deleted, record.metrics[0]])).toEqual([
      ['7', true, 6],
      ['9', false, 999],
    ]);
    expectSame([...first.records, ...second.records]);
  });
});
