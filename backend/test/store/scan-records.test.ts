import type { SourceRecord } from '../../src/sources/types';
import type { Store } from '../../src/store/types';
import { BOTH_STORES, datasetSpec } from '../helpers';

const T0 = Date.UTC(2026, 0, 5);
const spec = datasetSpec();

function record(id: number, deleted = false): SourceRecord {
  return {
    id: String(id),
    time: T0 + id * 1000,
    cursor: String(id),
    deleted,
    dims: ['US', 'mobile'],
    metrics: [id, 1],
    distinct: [`u${id}`],
  };
}

describe.each(BOTH_STORES)('scanRecords on the %s store', (_, open) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let generation: string;

  beforeEach(async () => {
    ({ store, cleanup } = await open());
    await store.register(spec);
    ({ generation } = await store.resetDataset(spec.name));
  });

  afterEach(() => cleanup());

  async function apply(records: SourceRecord[]): Promise<void> {
    const result = await store.applyBatch(spec.name, { generation, records, position: null, cutoffMs: 0 });
    expect(result.applied).toBe(true);
  }

  it('lists nothing for an empty dataset, and ends at once', async () => {
    expect(await store.scanRecords(spec.name, '0', 100)).toEqual({ cursor: '0', records: [] });
  });

  it('returns every record held throughout, in bounded steps, however the records change between steps', async () => {
    await apply(Array.from({ length: 1200 }, (_, i) => record(i + 1)));
    const seen = new Set<string>();
    let cursor = '0';
    let steps = 0;
    do {
      const step = await store.scanRecords(spec.name, cursor, 100);
      // SCAN's COUNT is a hint: a step stays near it, never a dump of the whole hash.
      expect(step.records.length).toBeLessThanOrEqual(200);
      for (const { id } of step.records) seen.add(id);
      cursor = step.cursor;
      steps++;
      // Between steps the sync writes: records 1..100 go, 2001.. arrive, 101..200 change.
      if (steps <= 10) {
        await apply([
          record(steps * 10 - 9, true),
          ...Array.from({ length: 9 }, (_, i) => record(steps * 10 - 8 + i, true)),
          ...Array.from({ length: 50 }, (_, i) => record(2000 + steps * 50 + i)),
          { ...record(100 + steps * 10), metrics: [-1, -1] },
        ]);
      }
    } while (cursor !== '0');
    expect(steps).toBeGreaterThan(5);
    const missing = Array.from({ length: 1100 }, (_, i) => String(i + 101)).filter((id) => !seen.has(id));
    expect(missing).toEqual([]);
    // Nothing that was never held.
    expect([...seen].filter((id) => Number(id) > 2549 || Number(id) < 1)).toEqual([]);
  });

  it('leaves out records deleted before their step', async () => {
    // Enough records that Redis keeps a real hash table (a small hash is listed in one step).
    await apply(Array.from({ length: 1000 }, (_, i) => record(i + 1)));
    const first = await store.scanRecords(spec.name, '0', 100);
    expect(first.records.length).toBeGreaterThan(0);
    expect(first.cursor).not.toBe('0');
    await apply(Array.from({ length: 1000 }, (_, i) => record(i + 1, true)));
    let cursor = first.cursor;
    const later: string[] = [];
    while (cursor !== '0') {
      const step = await store.scanRecords(spec.name, cursor, 100);
      later.push(...step.records.map((r) => r.id));
      cursor = step.cursor;
    }
    expect(later).toEqual([]);
  });
});
