/**
 * Issue 12, the HTTP source end to end: json-server (npm) as the upstream, the sync engine and
 * the memory store, records updated while the backfill reads them, then tombstones and
 * updates through json-server's PATCH. Every hourly cell ends equal to json-server's data.
 */
import { resolveDataset, type DatasetSpec } from '../../src/config/dataset';
import { HttpSource } from '../../src/sources/http';
import { MemoryStore } from '../../src/store/memory';
import { SyncEngine } from '../../src/sync/engine';
import { JsonServer } from '../sources/json-server';
import { DAY, expectHourlyEqual, HOUR, silent, storeHourly } from './support';

interface Row {
  id: number;
  ts: number;
  seq: number;
  country: string;
  amount: number;
  deleted: boolean;
}

const T0 = Date.UTC(2026, 0, 5);
const RANGE = { from: T0 - DAY, to: T0 + 3 * DAY };
const COUNTRIES = ['US', 'DE', 'FR', 'JP', 'BR'];

const api = new JsonServer<Row>('events');
let engine: SyncEngine | null = null;

afterAll(async () => {
  await engine?.stop();
  await api.stop();
});

function spec(): DatasetSpec {
  return resolveDataset({
    name: 'events',
    source: {
      kind: 'http',
      url: `${api.url}?_sort=seq,id&_order=asc,asc`,
      cursorParam: 'seq_gte',
      limitParam: '_limit',
      recordsPath: '',
      pagination: { kind: 'page', pageParam: '_page' },
      fields: {},
      headers: {},
      timeout: '10s',
      id: 'id',
      time: 'ts',
      cursor: 'seq',
      cursorType: 'number',
      deleted: 'deleted',
    },
    dimensions: ['country'],
    metrics: ['amount'],
    distinct: [],
    resolution: '1m',
    sync: { interval: '1h', batchSize: 200, lag: '0s', lookback: '0s' },
    staleAfter: '2h',
    retention: '3650d',
  });
}

/** Per hour and country: live records and the sum of their amounts, from json-server's data. */
function upstreamHourly(): Map<string, [number, number | null]> {
  const cells = new Map<string, [number, number | null]>();
  for (const row of api.rows()) {
    if (row.deleted) continue;
    const key = `${Math.floor(row.ts / HOUR) * HOUR}|${row.country}`;
    const [n, total] = cells.get(key) ?? [0, 0];
    cells.set(key, [n + 1, (total ?? 0) + row.amount]);
  }
  return cells;
}

it('ends equal to json-server, cell by cell, after updates during the backfill and tombstones', async () => {
  await api.start(
    Array.from({ length: 3000 }, (_, i) => ({
      id: i + 1,
      ts: T0 + ((i * 7919) % (2 * DAY)),
      seq: i + 1,
      country: COUNTRIES[i % COUNTRIES.length]!,
      amount: i % 100,
      deleted: false,
    })),
  );
  let seq = 3001;
  let reads = 0;
  // The backfill's first 10 reads each race 9 updates, most of them to records already read.
  api.onRead = () => {
    if (++reads > 10) return;
    for (let i = 0; i < 9; i++) {
      const id = 1 + ((reads * 131 + i * 337) % 3000);
      api.patch(id, { seq: seq++, amount: 500 + i, country: COUNTRIES[(id + reads) % COUNTRIES.length]! });
    }
  };
  const dataset = spec();
  if (dataset.source.kind !== 'http') throw new Error('an http dataset is needed');
  const store = new MemoryStore();
  await store.register(dataset);
  engine = new SyncEngine(dataset, new HttpSource(dataset, dataset.source), store, silent);
  engine.start();
  const syncOnce = async () => {
    await engine!.syncNow();
    expect(engine!.status().lastError).toBeNull();
  };

  await syncOnce();
  expect(reads).toBeGreaterThan(10);
  expectHourlyEqual(await storeHourly(store, dataset, RANGE), upstreamHourly());

  for (const id of [5, 50, 500, 1500, 2999])
    expect(await api.send('PATCH', id, { deleted: true, seq: seq++ })).toBe(200);
  for (const id of [6, 60, 600])
    expect(await api.send('PATCH', id, { amount: 1234, ts: T0 + DAY + id, seq: seq++ })).toBe(200);
  await syncOnce();
  // Tombstones are not counted.
  expect((await store.readState('events'))!.records).toBe(2995);
  expectHourlyEqual(await storeHourly(store, dataset, RANGE), upstreamHourly());
});
