import { CELL, DAY_MS, type DatasetSpec } from '../../src/config/dataset';
import type { SourceRecord } from '../../src/sources/types';
import { MemoryStore } from '../../src/store/memory';
import type { Store } from '../../src/store/types';
import { datasetSpec, prng, redisStore, registerLeased } from '../helpers';
import { referenceCells, referenceDistinct, storedCells } from './reference';

const T0 = Date.UTC(2026, 0, 5);
const COUNTRIES = ['US', 'DE', 'FR', 'JP'];
const DEVICES = ['desktop', 'mobile', 'tablet'];

interface Subject {
  store: Store;
  exactDistinct: boolean;
  forget: () => Promise<void>;
  cleanup: () => Promise<void>;
}

const subjects: [string, () => Promise<Subject>][] = [
  [
    'memory',
    async () => {
      const store = new MemoryStore();
      return {
        store,
        exactDistinct: true,
        forget: async () => store.forget('events'),
        cleanup: async () => {},
      };
    },
  ],
  [
    'redis',
    async () => {
      const { store, prefix, cleanup } = await redisStore();
      return {
        store,
        exactDistinct: false,
        forget: async () => {
          const keys = await store.redis.keys(`${prefix}:{events}:*`);
          if (keys.length > 0) await store.redis.del(...keys);
        },
        cleanup,
      };
    },
  ],
];

function makeRecord(random: () => number, id: number, spreadMs: number): SourceRecord {
  const amount = random() < 0.1 ? null : Math.round(random() * 100_000) / 100;
  return {
    id: String(id),
    time: T0 + Math.floor(random() * spreadMs),
    cursor: String(id),
    deleted: false,
    dims: [
      COUNTRIES[Math.floor(random() * COUNTRIES.length)]!,
      DEVICES[Math.floor(random() * DEVICES.length)]!,
    ],
    metrics: [amount, Math.round(random() * 5000)],
    distinct: [random() < 0.05 ? null : `u${Math.floor(random() * 300)}`],
  };
}

function expectCellsEqual(
  spec: DatasetSpec,
  actual: Map<string, number[]>,
  expected: Map<string, number[]>,
): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [key, want] of expected) {
    const got = actual.get(key)!;
    const where = `${key}: got ${got.join(',')} want ${want.join(',')}`;
    expect({ where, count: got[CELL.count] }).toEqual({ where, count: want[CELL.count] });
    spec.metrics.forEach((_, m) => {
      expect({ where, nn: got[CELL.nonNull(m)], min: got[CELL.min(m)], max: got[CELL.max(m)] }).toEqual({
        where,
        nn: want[CELL.nonNull(m)],
        min: want[CELL.min(m)],
        max: want[CELL.max(m)],
      });
      const sum = want[CELL.sum(m)]!;
      expect(Math.abs(got[CELL.sum(m)]! - sum)).toBeLessThanOrEqual(Math.max(1e-9 * Math.abs(sum), 1e-6));
    });
  }
}

describe.each(subjects)('%s store contract', (_name, make) => {
  const spec = datasetSpec();
  let subject: Subject;
  let generation: string;

  beforeEach(async () => {
    subject = await make();
    await registerLeased(subject.store, spec);
    generation = (await subject.store.resetDataset('events')).generation;
  });
  afterEach(async () => subject.cleanup());

  const apply = (records: SourceRecord[], cursor = 'c', cutoffMs = 0) =>
    subject.store.applyBatch('events', { generation, records, position: { cursor, id: '0' }, cutoffMs });

  it('keeps every tier and projection equal to a recomputation from the records, through updates and deletes', async () => {
    const random = prng(7);
    const spread = 3 * DAY_MS;
    const truth = new Map<string, SourceRecord>();
    let nextId = 0;
    const first = Array.from({ length: 1500 }, () => makeRecord(random, nextId++, spread));
    first.forEach((r) => truth.set(r.id, r));
    const r1 = await apply(first, 'c1');
    expect(r1).toMatchObject({ applied: true, version: 1, upserts: 1500, deletes: 0, unchanged: 0 });

    for (let round = 0; round < 4; round++) {
      const batch: SourceRecord[] = [];
      const ids = [...truth.keys()];
      for (let i = 0; i < 300; i++) {
        const id = ids[Math.floor(random() * ids.length)]!;
        const old = truth.get(id);
        if (!old || batch.some((r) => r.id === id)) continue;
        const roll = random();
        if (roll < 0.3) batch.push({ ...old, deleted: true });
        else if (roll < 0.5)
          batch.push({ ...old }); // re-read, unchanged
        else if (roll < 0.7)
          batch.push({ ...makeRecord(random, Number(id), spread) }); // moved anywhere
        else batch.push({ ...old, metrics: [random() < 0.2 ? null : random() * 500, old.metrics[1]!] });
      }
      for (let i = 0; i < 100; i++) batch.push(makeRecord(random, nextId++, spread));
      batch.push({ ...makeRecord(random, 999_999, spread), deleted: true }); // tombstone for an unknown id
      for (const r of batch) {
        if (r.deleted) truth.delete(r.id);
        else truth.set(r.id, r);
      }
      const result = await apply(batch, `c${round + 2}`);
      expect(result.applied).toBe(true);
      expectCellsEqual(
        spec,
        await storedCells(subject.store, spec, T0, T0 + spread + DAY_MS),
        referenceCells(spec, truth.values()),
      );
    }
    const state = await subject.store.readState('events');
    expect(state).toMatchObject({ generation, position: { cursor: 'c5', id: '0' }, records: truth.size });
  });

  it('recomputes a min or max that an update or delete removes', async () => {
    const at = T0 + 30_000;
    const rec = (id: string, amount: number): SourceRecord => ({
      id,
      time: at,
      cursor: id,
      deleted: false,
      dims: ['US', 'mobile'],
      metrics: [amount, 1],
      distinct: ['u1'],
    });
    await apply([rec('a', 1), rec('b', 5), rec('c', 9)]);
    await apply([{ ...rec('c', 9), deleted: true }, rec('a', 3)]);
    for (const tier of spec.layout.tiers) {
      const [group] = await subject.store.readRollups('events', {
        tierMs: tier,
        projection: 0,
        from: Math.floor(at / tier) * tier,
        to: Math.floor(at / tier) * tier + tier,
      });
      const cells = group!.cells;
      expect([cells[CELL.count], cells[CELL.min(0)], cells[CELL.max(0)], cells[CELL.sum(0)]]).toEqual([
        2, 3, 5, 8,
      ]);
    }
  });

  it('counts distinct values per bucket and drops values whose records leave', async () => {
    const random = prng(3);
    const records = Array.from({ length: 800 }, (_, i) => makeRecord(random, i, 2 * 3_600_000));
    await apply(records);
    const removed = records.slice(0, 300).map((r) => ({ ...r, deleted: true }));
    await apply(removed);
    const kept = records.slice(300);
    for (const tier of spec.layout.tiers.slice(spec.layout.distinctTier)) {
      const want = referenceDistinct(spec, kept, tier, 0);
      const buckets = [...want.keys()].sort((a, b) => a - b);
      const got = await subject.store.countDistinct('events', {
        tierMs: tier,
        projection: 0,
        groups: [[]],
        field: 0,
        ranges: buckets.map((b) => [b, b + tier]),
      });
      buckets.forEach((b, i) => {
        const exact = want.get(b)!;
        if (subject.exactDistinct) expect(got[i]).toBe(exact);
        else expect(Math.abs(got[i]! - exact)).toBeLessThanOrEqual(Math.max(2, exact * 0.03));
      });
    }
  });

  it('lists the records it holds with their cursors, a bounded step at a time', async () => {
    const random = prng(5);
    // Serial ids and ids of any other shape (kept apart in Redis), then deletes and moves.
    const records = [
      ...Array.from({ length: 300 }, (_, i) => makeRecord(random, i, DAY_MS)),
      ...['a-1', 'user:7', '', '__proto__', 'é\x1f', '007', '9007199254740993'].map((id, i) => ({
        ...makeRecord(random, 0, DAY_MS),
        id,
        cursor: `t${i}`,
      })),
    ];
    await apply(records);
    const deleted = new Set(['3', '150', 'user:7']);
    await apply([
      ...records.filter((r) => deleted.has(r.id)).map((r) => ({ ...r, deleted: true })),
      { ...records[10]!, cursor: '1764269232345678', time: records[10]!.time + 3_600_000 },
    ]);
    const want = new Map(records.filter((r) => !deleted.has(r.id)).map((r) => [r.id, r.cursor]));
    want.set(records[10]!.id, '1764269232345678');
    const got = new Map<string, string>();
    let cursor = '0';
    let steps = 0;
    do {
      const step = await subject.store.scanRecords('events', cursor, 50);
      expect(step.records.length).toBeLessThanOrEqual(400);
      for (const r of step.records) got.set(r.id, r.cursor);
      cursor = step.cursor;
      steps++;
    } while (cursor !== '0');
    expect(steps).toBeGreaterThan(1);
    expect(Object.fromEntries([...got].sort())).toEqual(Object.fromEntries([...want].sort()));
  });

  it('does not bump the version for a batch that changes nothing', async () => {
    const random = prng(11);
    const records = Array.from({ length: 50 }, (_, i) => makeRecord(random, i, 3_600_000));
    const first = await apply(records);
    const again = await apply(records);
    expect(again).toMatchObject({
      applied: true,
      version: (first as { version: number }).version,
      upserts: 0,
      unchanged: 50,
    });
  });

  it('refuses a batch once the state is lost, and applies nothing', async () => {
    const random = prng(5);
    await apply([makeRecord(random, 1, 60_000)]);
    await subject.forget();
    await registerLeased(subject.store, spec);
    expect(await subject.store.readState('events')).toBeNull();
    expect(await apply([makeRecord(random, 2, 60_000)])).toEqual({ applied: false, reason: 'state-lost' });
    const groups = await subject.store.readRollups('events', {
      tierMs: 60_000,
      projection: 0,
      from: T0,
      to: T0 + 60_000,
    });
    expect(groups).toEqual([]);
  });

  it('answers the generation it holds, and none once the state is lost', async () => {
    expect(await subject.store.readGeneration('events')).toBe(generation);
    await subject.forget();
    await registerLeased(subject.store, spec);
    expect(await subject.store.readGeneration('events')).toBeNull();
  });

  it('keeps a resync mark with the generation, guarded by it, until cleared', async () => {
    expect((await subject.store.readState('events'))!.resync).toBeNull();
    const mark = { since: T0, applied: 0, remaining: null };
    const resync = await subject.store.resetDataset('events', mark);
    expect(resync.resync).toEqual(mark);
    expect((await subject.store.readState('events'))!.resync).toEqual(mark);
    const progress = { since: T0, applied: 500, remaining: 1500 };
    expect(await subject.store.writeResync('events', resync.generation, progress)).toBe(true);
    // Batches applied meanwhile leave the mark alone.
    await subject.store.applyBatch('events', {
      generation: resync.generation,
      records: [makeRecord(prng(3), 1, 60_000)],
      position: { cursor: 'c', id: '1' },
      cutoffMs: 0,
    });
    expect((await subject.store.readState('events'))!.resync).toEqual(progress);
    // A writer of an older generation cannot touch it.
    expect(await subject.store.writeResync('events', generation, null)).toBe(false);
    expect((await subject.store.readState('events'))!.resync).toEqual(progress);
    expect(await subject.store.writeResync('events', resync.generation, null)).toBe(true);
    expect((await subject.store.readState('events'))!.resync).toBeNull();
    // Nothing is written for a generation that is gone.
    await subject.forget();
    await registerLeased(subject.store, spec);
    expect(await subject.store.writeResync('events', resync.generation, progress)).toBe(false);
    expect(await subject.store.readState('events')).toBeNull();
  });

  it('keeps ended regions, newest first, and keeps them and the status across a reset', async () => {
    await subject.store.appendRegion('events', {
      kind: 'failure',
      startedAt: 100,
      endedAt: 400,
      count: 3,
      error: { message: 'down', class: 'transient', origin: 'upstream' },
    });
    await subject.store.appendRegion('events', { kind: 'pause', startedAt: 500, endedAt: 900, count: 0 });
    await subject.store.appendRegion('events', { kind: 'resync', startedAt: 1000, endedAt: 1200, count: 42 });
    await subject.store.writeStatus('events', { state: 'idle', lastSuccessAt: 1200 });
    await subject.store.resetDataset('events');
    expect((await subject.store.readRegions('events', 0, 2000, 10)).map((r) => r.kind)).toEqual([
      'resync',
      'pause',
      'failure',
    ]);
    expect(await subject.store.readRegions('events', 450, 950, 10)).toEqual([
      { kind: 'pause', startedAt: 500, endedAt: 900, count: 0 },
    ]);
    expect(await subject.store.readRegions('events', 0, 2000, 1)).toHaveLength(1);
    expect(await subject.store.readStatus('events')).toEqual({ state: 'idle', lastSuccessAt: 1200 });
  });

  it('drops records outside retention and trims old buckets', async () => {
    const random = prng(9);
    const old = Array.from({ length: 100 }, (_, i) => ({ ...makeRecord(random, i, 3_600_000) }));
    const recent = Array.from({ length: 100 }, (_, i) => ({
      ...makeRecord(random, 1000 + i, 3_600_000),
      time: T0 + 3 * DAY_MS + i * 1000,
    }));
    await apply([...old, ...recent]);
    const cutoff = T0 + 2 * DAY_MS;
    expect(await subject.store.trim('events', cutoff)).toBe(100);
    expect((await subject.store.readState('events'))!.records).toBe(100);
    const listed: string[] = [];
    let cursor = '0';
    do {
      const step = await subject.store.scanRecords('events', cursor, 1000);
      listed.push(...step.records.map((r) => r.id));
      cursor = step.cursor;
    } while (cursor !== '0');
    expect(new Set(listed)).toEqual(new Set(recent.map((r) => r.id)));
    const before = await subject.store.readRollups('events', {
      tierMs: 60_000,
      projection: 0,
      from: T0,
      to: T0 + 3_600_000,
    });
    expect(before).toEqual([]);
    // A record arriving older than the cutoff is not kept.
    const late = await apply([{ ...makeRecord(random, 5000, 60_000) }], 'late', cutoff);
    expect(late).toMatchObject({ applied: true, upserts: 0, unchanged: 1 });
  });

  it('keeps a capped list of sync events and the status', async () => {
    for (let i = 0; i < 5; i++) {
      await subject.store.appendEvent('events', {
        startedAt: i * 100,
        endedAt: i * 100 + 50,
        outcome: i === 3 ? 'failure' : 'success',
        records: i,
      });
    }
    const events = await subject.store.readEvents('events', 100, 300, 10);
    expect(events.map((e) => e.records)).toEqual([3, 2, 1]);
    expect(await subject.store.readEvents('events', 0, 1000, 2)).toHaveLength(2);
    await subject.store.writeStatus('events', { state: 'idle', n: 1 });
    expect(await subject.store.readStatus('events')).toEqual({ state: 'idle', n: 1 });
  });
});
