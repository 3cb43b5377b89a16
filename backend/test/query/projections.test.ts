import { keptProjection } from '../../src/config/dataset';
import { runMetricsQuery } from '../../src/query/engine';
import type { SourceRecord } from '../../src/sources/types';
import { MemoryStore } from '../../src/store/memory';
import { datasetSpec, prng } from '../helpers';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 5);

describe('kept projections', () => {
  const dimensions = ['country', 'device', 'plan'];

  it('keeps none, each dimension alone, all together and the combinations named', () => {
    expect(datasetSpec({ dimensions }).layout.projections).toEqual([0, 1, 2, 4, 7]);
    expect(datasetSpec({ dimensions, projections: [['plan', 'country']] }).layout.projections).toEqual([
      0, 1, 2, 4, 5, 7,
    ]);
    // Two dimensions: every combination.
    expect(datasetSpec().layout.projections).toEqual([0, 1, 2, 3]);
    expect(() => datasetSpec({ dimensions, projections: [['country', 'region']] })).toThrow(
      'datasets.events.projections[0]: region is not a dimension of the dataset (country, device, plan)',
    );
  });

  it('reads the kept projection that holds exactly the dimensions, else the smallest that holds them', () => {
    const layout = datasetSpec({ dimensions, projections: [['country', 'device']] }).layout;
    expect(keptProjection(layout, 0b001)).toBe(0b001);
    expect(keptProjection(layout, 0b011)).toBe(0b011);
    expect(keptProjection(layout, 0b101)).toBe(0b111);
  });

  it('answers a combination not kept by folding all dimensions together, as if it were kept', async () => {
    const random = prng(4);
    const pick = (values: string[]) => values[Math.floor(random() * values.length)]!;
    const records: SourceRecord[] = Array.from({ length: 400 }, (_, i) => ({
      id: String(i),
      time: T0 + Math.floor(random() * 6 * HOUR),
      cursor: String(i),
      deleted: false,
      dims: [pick(['US', 'DE', 'FR']), pick(['mobile', 'desktop']), pick(['free', 'pro'])],
      metrics: [random() < 0.1 ? null : Math.round(random() * 1000) / 10, Math.round(random() * 100)],
      distinct: [`u${Math.floor(random() * 40)}`],
    }));
    const answers: unknown[][] = [];
    for (const projections of [[], [['country', 'plan']]]) {
      const spec = datasetSpec({ dimensions, projections, distinctFrom: '1m' });
      const store = new MemoryStore();
      await store.register(spec);
      const { generation } = await store.resetDataset('events');
      await store.applyBatch('events', { generation, records, position: null, cutoffMs: 0 });
      const { frames } = await runMetricsQuery(
        store,
        spec,
        {
          refId: 'A',
          dataset: 'events',
          aggregations: ['count', 'sum(amount)', 'min(amount)', 'max(duration_ms)', 'distinct(user_id)'],
          groupBy: ['country'],
          filters: { plan: ['pro'] },
        },
        { from: T0, to: T0 + 6 * HOUR },
        10 * 60_000,
        1000,
        'q',
      );
      // Sums folded in another order differ in the last bits only.
      answers.push(
        JSON.parse(
          JSON.stringify(frames, (_, v: unknown) => (typeof v === 'number' ? Number(v.toPrecision(12)) : v)),
        ) as unknown[],
      );
    }
    expect(answers[0]!.length).toBe(3);
    expect(answers[0]).toEqual(answers[1]);
  });
});
