import { resolveDataset, type DatasetSpec } from '../../src/config/dataset';
import { HttpSource } from '../../src/sources/http';
import type { Store } from '../../src/store/types';
import { SyncEngine } from '../../src/sync/engine';
import { BOTH_STORES, prng } from '../helpers';
import { JsonServer } from '../sources/json-server';
import { expectHourlyEqual, HOUR, recordTombstones, silent, storeHourly } from './support';

const T0 = Date.UTC(2026, 0, 5);
const RANGE = { from: T0 - 2 * HOUR, to: T0 + 4 * 24 * HOUR };
const COUNTRIES = ['US', 'DE', 'FR', 'JP', null];

interface Event {
  id: number;
  ts: number;
  updatedAt: number;
  country: string | null;
  amount: number;
}

function seed(count: number): Event[] {
  const random = prng(7);
  return Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    ts: T0 + Math.floor(random() * 2 * 24 * HOUR),
    updatedAt: T0 + i,
    country: COUNTRIES[Math.floor(random() * COUNTRIES.length)]!,
    amount: Math.round(random() * 100_000) / 100,
  }));
}

/** What the API holds, per hour and country, in storeHourly's form. */
function apiHourly(events: Event[]): Map<string, [number, number | null]> {
  const out = new Map<string, [number, number | null]>();
  for (const e of events) {
    const key = `${Math.floor(e.ts / HOUR) * HOUR}|${e.country ?? ''}`;
    const [n, sum] = out.get(key) ?? [0, 0];
    out.set(key, [n + 1, (sum ?? 0) + e.amount]);
  }
  return out;
}

function httpSpec(url: string, idFilterParam: string): DatasetSpec {
  return resolveDataset({
    name: 'events',
    source: {
      kind: 'http',
      // Sorted by the cursor, then the id, as the source reads: `updatedAt_gte` is json-server's keyset.
      url: `${url}?_sort=updatedAt,id`,
      cursorParam: 'updatedAt_gte',
      limitParam: '_limit',
      recordsPath: '',
      pagination: { kind: 'page', pageParam: '_page' },
      cursorType: 'epoch_ms',
      fields: {},
      headers: {},
      timeout: '10s',
      id: 'id',
      time: 'ts',
      cursor: 'updatedAt',
      idFilterParam,
    },
    dimensions: ['country'],
    metrics: ['amount'],
    distinct: [],
    resolution: '1m',
    sync: {
      interval: '1h',
      batchSize: 100,
      lag: '0s',
      lookback: '0s',
      reconcile: { every: '1h', pageSize: 50, perRun: 10_000 },
    },
    staleAfter: '2h',
    retention: '3650d',
  });
}

describe.each(BOTH_STORES)('reconciliation against json-server, %s store', (_, open) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let api: JsonServer<Event>;
  let clock: number;
  let engine: SyncEngine;
  let source: HttpSource;

  beforeEach(async () => {
    ({ store, cleanup } = await open());
    api = new JsonServer<Event>('events');
    await api.start(seed(300));
    clock = Date.now();
  });

  afterEach(async () => {
    await engine?.stop();
    await api.stop();
    await cleanup();
  });

  async function startEngine(spec: DatasetSpec): Promise<void> {
    if (spec.source.kind !== 'http') throw new Error('an http dataset is needed');
    source = new HttpSource(spec, spec.source);
    engine = new SyncEngine(spec, source, store, silent, {
      now: () => clock,
      backoff: { initialMs: 20, maxMs: 100 },
    });
    await store.register(spec);
    engine.start();
  }

  async function syncOnce(): Promise<void> {
    await engine.syncNow();
    const status = engine.status();
    if (status.state !== 'idle') throw new Error(`sync did not succeed: ${status.lastError?.message ?? ''}`);
  }

  it('20 hard DELETEs: after the next pass the API and the store agree', async () => {
    const spec = httpSpec(api.url, 'id');
    await startEngine(spec);
    await syncOnce();
    expect(engine.status().records).toBe(300);
    expect(engine.status().reconcile!.lastPass).toMatchObject({ checked: 300, tombstoned: 0 });

    for (let id = 10; id < 210; id += 10) expect(await api.send('DELETE', id)).toBe(200);
    clock += HOUR;
    await syncOnce();
    expect(engine.status().reconcile!.lastPass).toMatchObject({ checked: 300, tombstoned: 20 });
    expect(engine.status().records).toBe(280);
    expectHourlyEqual(await storeHourly(store, spec, RANGE), apiHourly(api.rows()));
  });

  it('never removes a live record while the API changes during the pass', async () => {
    const spec = httpSpec(api.url, 'id');
    await startEngine(spec);
    await syncOnce();
    const tombstoned = recordTombstones(store);
    const existing = source.existing.bind(source);
    let next = 1000;
    source.existing = async (ids, signal) => {
      const [a, b, c] = ids;
      expect(
        await api.send('PATCH', Number(a), { amount: 1, country: 'ZA', updatedAt: T0 + next++ * 1000 }),
      ).toBe(200);
      expect(await api.send('DELETE', Number(b))).toBe(200);
      await api.send('POST', null, {
        id: next,
        ts: T0,
        updatedAt: T0 + next++ * 1000,
        country: 'IN',
        amount: 5,
      });
      const deletedLater = 300 - Number(c);
      // It may be gone already (deleted as another page's `b`): 404 is as good.
      if (deletedLater > 0) await api.send('DELETE', deletedLater);
      return existing(ids, signal);
    };
    clock += HOUR;
    await syncOnce();
    expect(tombstoned.length).toBeGreaterThan(0);
    const live = new Set(api.rows().map((e) => String(e.id)));
    expect(tombstoned.filter((id) => live.has(id))).toEqual([]);

    source.existing = existing;
    clock += HOUR;
    await syncOnce();
    const events = api.rows();
    expect(engine.status().records).toBe(events.length);
    expectHourlyEqual(await storeHourly(store, spec, RANGE), apiHourly(events));
  });

  it('an API that ignores idFilterParam is an error that says so, and nothing is removed', async () => {
    const spec = httpSpec(api.url, 'no_such_field');
    await startEngine(spec);
    await syncOnce();
    const status = engine.status();
    expect(status.records).toBe(300);
    expect(status.reconcile!.lastPass).toBeNull();
    expect(status.reconcile!.lastError).toMatchObject({
      class: 'permanent',
      origin: 'config',
      message: expect.stringContaining('does not filter by that parameter'),
    });
    // A permanent error is not retried at every run.
    expect(status.reconcile!.nextPassAt).toBe(status.reconcile!.lastError!.at + spec.sync.permanentRetryMs);
  });
});
