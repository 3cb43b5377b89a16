import { planMetricsRead } from '../../src/query/engine';
import { QueryError } from '../../src/query/errors';
import { planBuckets } from '../../src/query/step';
import { MemoryStore } from '../../src/store/memory';
import { datasetSpec } from '../helpers';

const MIN = 60_000;
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 5);

describe('steps and the tiers that keep distinct counts', () => {
  const spec = datasetSpec(); // distinctFrom: 1h, the default

  it('keeps distinct counts from the hour on by default', () => {
    expect(spec.layout.distinctTier).toBe(1);
    expect(datasetSpec({ distinctFrom: '1m' }).layout.distinctTier).toBe(0);
    // A tier coarser than any kept: the coarsest tier keeps them.
    expect(datasetSpec({ distinctFrom: '7d' }).layout.distinctTier).toBe(2);
  });

  it('steps a distinct query by the finest tier that keeps distinct counts, and says why', () => {
    const plain = planBuckets(spec, T0, T0 + 6 * HOUR, MIN, 1000);
    expect(plain).toMatchObject({ stepMs: MIN, tierMs: MIN });
    expect(plain.coarsened).toBeUndefined();
    const distinct = planBuckets(spec, T0, T0 + 6 * HOUR, MIN, 1000, { distinct: true });
    expect(distinct).toMatchObject({ stepMs: HOUR, tierMs: HOUR });
    expect(distinct.coarsened).toBe(
      'events keeps distinct counts per 1h and coarser (datasets.events.distinctFrom): answered per 1h instead of 1m',
    );
    // A step already a whole number of hours stays as asked.
    expect(planBuckets(spec, T0, T0 + 6 * HOUR, 2 * HOUR, 1000, { distinct: true })).toMatchObject({
      stepMs: 2 * HOUR,
    });
    expect(
      planBuckets(spec, T0, T0 + 6 * HOUR, 2 * HOUR, 1000, { distinct: true }).coarsened,
    ).toBeUndefined();
  });

  it('refuses to count distinct values on a tier that does not keep them', async () => {
    const store = new MemoryStore();
    await store.register(spec);
    const plan = planBuckets(spec, T0, T0 + 6 * HOUR, MIN, 1000);
    const read = planMetricsRead(
      store,
      spec,
      { refId: 'A', dataset: 'events', aggregations: ['distinct(user_id)'] },
      plan,
      'queries[0]',
    );
    await expect(read).rejects.toThrow(QueryError);
    await expect(read).rejects.toThrow(
      'queries[0].aggregations: events keeps distinct counts per 1h and coarser, not per 1m',
    );
  });
});
