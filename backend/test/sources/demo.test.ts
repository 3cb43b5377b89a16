import type { DemoSourceConfig } from '../../src/config/schema';
import { DemoSource } from '../../src/sources/demo';
import { Random } from '../../src/sources/random';
import { SourceError, type SourceRecord } from '../../src/sources/types';
import { drain, specFor } from './helpers';

const HOUR = 3_600_000;
/** 2024-01-01T00:00:00Z: the clock every test starts from. */
const START = 1_704_067_200_000;

const DEFAULT_FIELDS = {
  dimensions: ['country', 'device', 'page'],
  metrics: ['amount', 'duration_ms'],
  distinct: ['user_id'],
};

class Clock {
  constructor(public ms = START) {}
  now = () => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

function demoConfig(overrides: Partial<DemoSourceConfig> = {}): DemoSourceConfig {
  return {
    kind: 'demo',
    rate: 5,
    history: '6h',
    updateRatio: 0.02,
    deleteRatio: 0.005,
    seed: 1,
    ...overrides,
  };
}

function demo(overrides: Partial<DemoSourceConfig> = {}, clock = new Clock(), fields = DEFAULT_FIELDS) {
  const config = demoConfig(overrides);
  return new DemoSource(specFor(config, fields), config, { now: clock.now });
}

const inserts = (records: SourceRecord[]) => new Set(records.map((r) => r.id)).size;
const changed = (records: SourceRecord[]) => records.filter((r) => r.cursor !== r.id);

describe('DemoSource', () => {
  it('is deterministic for a seed', async () => {
    const a = await drain(demo({ seed: 7, history: '1h' }), 1000);
    const b = await drain(demo({ seed: 7, history: '1h' }), 1000);
    const c = await drain(demo({ seed: 8, history: '1h' }), 1000);
    expect(a.records.length).toBeGreaterThan(10_000);
    expect(b.records).toEqual(a.records);
    expect(c.records).not.toEqual(a.records);
  });

  it('starts with the history at the configured rate, in the past', async () => {
    // A whole day evens out the diurnal swing: exactly rate × seconds events.
    const { records } = await drain(demo({ rate: 2, history: '24h' }), 5000);
    expect(Math.abs(inserts(records) - 2 * 86_400)).toBeLessThanOrEqual(1);
    expect(records.every((r) => r.time >= START - 24 * HOUR && r.time < START)).toBe(true);
  });

  it('generates what is due on the injected clock, busier in the afternoon than at night', async () => {
    const clock = new Clock();
    const src = demo({ rate: 1, history: '0s' }, clock);
    const perHour: number[] = [];
    const seen = new Set<string>();
    let last = null;
    for (let hour = 0; hour < 24; hour++) {
      clock.advance(HOUR);
      const batch = await drain(src, 10_000, last);
      last = batch.last;
      const fresh = batch.records.filter((r) => !seen.has(r.id));
      fresh.forEach((r) => seen.add(r.id));
      perHour.push(fresh.length);
      expect(fresh.every((r) => r.time >= clock.ms - HOUR && r.time < clock.ms)).toBe(true);
    }
    const total = perHour.reduce((a, b) => a + b, 0);
    expect(Math.abs(total - 86_400)).toBeLessThanOrEqual(1);
    for (const count of perHour) {
      expect(count).toBeGreaterThan(3600 * 0.55);
      expect(count).toBeLessThan(3600 * 1.45);
    }
    // Hour 15 ends at 16:00 UTC, near the peak; hour 3 near the trough.
    expect(perHour[15]!).toBeGreaterThan(perHour[3]! * 2);
    expect((await src.fetch({ after: last, limit: 10 })).records).toEqual([]);
  });

  it('corrects and deletes some events later, moving their cursor', async () => {
    const { records } = await drain(demo(), 5000);
    const corrected = changed(records).filter((r) => !r.deleted);
    const deleted = records.filter((r) => r.deleted);
    const total = inserts(records);
    expect(corrected.length).toBeGreaterThan(total * 0.01);
    expect(corrected.length).toBeLessThan(total * 0.03);
    expect(deleted.length).toBeGreaterThan(total * 0.002);
    expect(deleted.length).toBeLessThan(total * 0.01);
    expect(deleted.every((r) => BigInt(r.cursor) > BigInt(r.id))).toBe(true);
  });

  it('pages by (cursor, id) covering every change exactly once, also across new arrivals', async () => {
    const clock = new Clock();
    const src = demo({}, clock);
    const first = await drain(src, 777);
    const positions = first.records.map((r) => `${r.cursor}/${r.id}`);
    expect(new Set(positions).size).toBe(positions.length);
    expect(inserts(first.records)).toBe(first.records.length);

    clock.advance(10 * 60_000);
    const second = await drain(src, 777, first.last);
    expect(second.records.length).toBeGreaterThan(1000);
    expect(second.records.every((r) => src.compare(r, first.last!) > 0)).toBe(true);
    expect(changed(second.records).some((r) => first.records.some((old) => old.id === r.id))).toBe(true);
  });

  it('re-reads the changes within rewindMs of the position', async () => {
    const src = demo({ history: '1h' });
    const { records, last } = await drain(src, 5000);
    const rewound = await src.fetch({ after: last, limit: 100_000, rewindMs: 60_000 });
    const window = records.filter((r) => BigInt(r.cursor) >= BigInt(last!.cursor) - 60_000_000n);
    expect(window.length).toBeGreaterThan(100);
    expect(rewound.records).toEqual(window);
  });

  it('fails transiently while paused and catches up on resume', async () => {
    const clock = new Clock();
    const src = demo({ history: '1h' }, clock);
    const { last } = await drain(src, 5000);
    src.pause();
    clock.advance(60_000);
    const err = await src.fetch({ after: last, limit: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).errorClass).toBe('transient');
    expect((err as SourceError).message).toBe('events: demo upstream is paused');
    src.resume();
    const caughtUp = await drain(src, 5000, last);
    expect(inserts(caughtUp.records)).toBeGreaterThan(60 * 5 * 0.5);
  });

  it('produces web-analytics values with realistic skews', async () => {
    const { records } = await drain(demo({ history: '2h' }), 5000);
    const share = (test: (r: SourceRecord) => boolean) => records.filter(test).length / records.length;
    expect(share((r) => r.dims[0] === 'US')).toBeGreaterThan(0.2);
    expect(share((r) => r.dims[0] === 'US')).toBeLessThan(0.4);
    expect(share((r) => r.dims[1] === 'desktop')).toBeGreaterThan(share((r) => r.dims[1] === 'mobile'));
    expect(share((r) => r.dims[1] === 'mobile')).toBeGreaterThan(share((r) => r.dims[1] === 'tablet'));
    expect(records.every((r) => typeof r.dims[2] === 'string' && r.dims[2].startsWith('/'))).toBe(true);
    expect(share((r) => r.metrics[0] === 0)).toBeGreaterThan(0.9);
    expect(share((r) => (r.metrics[0] ?? 0) > 0)).toBeGreaterThan(0.005);
    const durations = records.map((r) => r.metrics[1] ?? 0).sort((a, b) => a - b);
    expect(durations[0]).toBeGreaterThan(0);
    // Log-normal: a long right tail puts the mean well above the median.
    const mean = durations.reduce((a, b) => a + b, 0) / durations.length;
    expect(mean).toBeGreaterThan(durations[durations.length >> 1]! * 1.2);
    expect(records.every((r) => /^u\d+$/.test(r.distinct[0] ?? ''))).toBe(true);
    expect(new Set(records.map((r) => r.distinct[0])).size).toBeLessThan(records.length * 0.8);
  });

  it('invents plausible values for other field names', async () => {
    const fields = {
      dimensions: ['browser', 'flavour'],
      metrics: ['score', 'weight'],
      distinct: ['session_id'],
    };
    const { records } = await drain(demo({ history: '10m' }, new Clock(), fields), 5000);
    expect(records.length).toBeGreaterThan(1000);
    for (const r of records) {
      expect(r.dims.every((d) => typeof d === 'string' && d.length > 0)).toBe(true);
      expect(r.metrics.every((m) => typeof m === 'number' && m > 0)).toBe(true);
      expect(r.distinct[0]).toMatch(/^s\d+$/);
    }
    expect(new Set(records.map((r) => r.dims[1])).size).toBeGreaterThan(3);
  });

  it('forgets events long out of the history window, bounding memory', async () => {
    const clock = new Clock();
    const src = demo({ rate: 5, history: '1h' }, clock);
    let last = (await drain(src, 10_000)).last;
    for (let step = 0; step < 12; step++) {
      clock.advance(HOUR / 2);
      last = (await drain(src, 10_000, last)).last;
    }
    const { records } = await drain(src, 10_000);
    expect(records.every((r) => r.time >= clock.ms - 2 * HOUR)).toBe(true);
    expect(await src.estimateRemaining(null)).toBeLessThan(2 * 5 * 7200 * 1.4 + 1024);
  });

  it('builds a 6 h history at 5 events/s in work linear in its events, a minute sorted at a time', async () => {
    // The dataset is resolved before counting: only the source's own work is counted.
    const config = demoConfig({ rate: 5, history: '6h' });
    const spec = specFor(config, DEFAULT_FIELDS);
    // Counted, not timed: random draws per change, and the sizes of the sorts.
    const draws = jest.spyOn(Random.prototype, 'next');
    const sort = jest.spyOn(Array.prototype, 'sort');
    let src: DemoSource;
    let drawn: number;
    let sorted: number[];
    try {
      src = new DemoSource(spec, config, { now: new Clock().now });
    } finally {
      // Read before restoring: mockRestore() also clears what the spies recorded.
      drawn = draws.mock.calls.length;
      sorted = sort.mock.contexts.map((array) => (array as unknown[]).length);
      sort.mockRestore();
      draws.mockRestore();
    }
    const changes = (await src.estimateRemaining(null))!;
    // 6 h at 5/s swinging ±40 % over the day, plus a few corrections and deletes.
    expect(changes).toBeGreaterThan(6 * 3600 * 5 * 0.6);
    expect(changes).toBeLessThan(6 * 3600 * 5 * 1.4 * 1.03);
    // About ten per change: its time, each field's value, whether to correct or delete one.
    expect(drawn).toBeGreaterThan(changes);
    expect(drawn).toBeLessThan(changes * 12);
    // One sort per minute of history, each of that minute's events only (5/s at the +40 % peak).
    expect(sorted.length).toBe(6 * 60);
    expect(Math.max(...sorted)).toBeLessThanOrEqual(Math.ceil(60 * 5 * 1.4));
  });
});
