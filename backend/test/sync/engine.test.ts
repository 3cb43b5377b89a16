import { pino } from 'pino';
import { SyncEngine, type EngineOptions } from '../../src/sync/engine';
import type { SyncStateName } from '../../src/sync/status';
import { MemoryStore } from '../../src/store/memory';
import type { SourceRecord } from '../../src/sources/types';
import { datasetSpec, prng } from '../helpers';
import { referenceCells } from '../store/reference';
import { ArraySource } from './array-source';

const log = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 0, 5);

function rows(n: number, seed = 1): SourceRecord[] {
  const random = prng(seed);
  return Array.from({ length: n }, (_, i) => ({
    id: String(i),
    time: T0 + Math.floor(random() * 6 * 3_600_000),
    cursor: String(1000 + Math.floor(i / 3)), // several rows share each cursor value
    deleted: false,
    dims: [['US', 'DE', 'JP'][i % 3]!, ['desktop', 'mobile'][i % 2]!],
    metrics: [Math.round(random() * 1000) / 10, i % 7],
    distinct: [`u${i % 50}`],
  }));
}

function setup(options: EngineOptions = {}, overrides: Parameters<typeof datasetSpec>[0] = {}) {
  const spec = datasetSpec({
    sync: { interval: '1h', batchSize: 100, lag: '0s', lookback: '0s' },
    ...overrides,
  });
  const store = new MemoryStore();
  const source = new ArraySource();
  const engine = new SyncEngine(spec, source, store, log, options);
  return { spec, store, source, engine };
}

/** Resolves with the next `count` scheduling decisions. */
function nextSchedules(
  engine: SyncEngine,
  count: number,
): Promise<{ delayMs: number; state: SyncStateName }[]> {
  return new Promise((resolve) => {
    const seen: { delayMs: number; state: SyncStateName }[] = [];
    const listener = (s: { delayMs: number; state: SyncStateName }) => {
      seen.push(s);
      if (seen.length === count) {
        engine.off('scheduled', listener);
        resolve(seen);
      }
    };
    engine.on('scheduled', listener);
  });
}

async function expectEqualToReference(
  store: MemoryStore,
  spec: ReturnType<typeof datasetSpec>,
  truth: SourceRecord[],
) {
  const want = referenceCells(
    spec,
    truth.filter((r) => !r.deleted),
  );
  const tier = spec.layout.tiers[1]!;
  const groups = await store.readRollups('events', {
    tierMs: tier,
    projection: 0,
    from: T0,
    to: T0 + 86_400_000,
  });
  const F = spec.layout.fieldCount;
  const got = new Map<number, number>();
  groups[0]?.cells.forEach((v, i) => {
    if (i % F === 0 && v > 0) got.set(T0 + (i / F) * tier, v);
  });
  const expected = new Map(
    [...want]
      .filter(([k]) => k.startsWith(`${tier}|0|`))
      .map(([k, cell]) => [Number(k.split('|')[3]), cell[0]!]),
  );
  expect(got).toEqual(expected);
}

describe('SyncEngine', () => {
  it('reads every page into the store and commits the position with each batch', async () => {
    const { spec, store, source, engine } = setup();
    source.rows = rows(1050);
    await store.register(spec);
    engine.start();
    await engine.syncNow();
    await engine.stop();
    const state = await store.readState('events');
    expect(state).toMatchObject({
      records: 1050,
      position: { cursor: String(1000 + Math.floor(1049 / 3)), id: '1049' },
    });
    expect(engine.status()).toMatchObject({
      state: 'idle',
      recordsApplied: 1050,
      lastError: null,
      backfill: null,
    });
    await expectEqualToReference(store, spec, source.rows);
    // The run started by start() read everything; the one syncNow() asked for found nothing new.
    const events = await store.readEvents('events', 0, Date.now(), 5);
    expect(events.map((e) => [e.outcome, e.records])).toEqual([
      ['success', 0],
      ['success', 1050],
    ]);
  });

  it('backs off with full jitter under a cap while the upstream fails transiently', async () => {
    const { spec, store, source, engine } = setup({
      backoff: { initialMs: 4, maxMs: 64 },
      breaker: { threshold: 1000, halfOpenAfterMs: 10 },
    });
    source.failWith = { message: 'connect ECONNREFUSED', class: 'transient' };
    await store.register(spec);
    const schedules = nextSchedules(engine, 14);
    engine.start();
    const delays = (await schedules).map((s) => s.delayMs);
    await engine.stop();
    delays.forEach((d, n) => {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(64, 4 * 2 ** n));
    });
    expect(new Set(delays).size).toBeGreaterThan(3);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(delays.slice(6))).toBeGreaterThan(mean(delays.slice(0, 3)));
    expect(engine.status()).toMatchObject({
      state: 'backoff',
      lastError: { class: 'transient', message: 'connect ECONNREFUSED' },
    });
    expect(source.fetches).toBe(14);
  });

  it('does not hammer an upstream that fails permanently', async () => {
    const { spec, store, source, engine } = setup({ permanentRetryMs: 3_600_000 });
    source.failWith = { message: 'relation "public.evnts" does not exist', class: 'permanent' };
    await store.register(spec);
    const schedules = nextSchedules(engine, 1);
    engine.start();
    const [first] = await schedules;
    expect(first).toEqual({ delayMs: 3_600_000, state: 'failing' });
    await engine.stop();
    expect(source.fetches).toBe(1);
    const [event] = await store.readEvents('events', 0, Date.now(), 1);
    expect(event).toMatchObject({ outcome: 'failure', error: { class: 'permanent' } });
  });

  it('opens the circuit after consecutive failures and waits before probing again', async () => {
    const now = Date.UTC(2026, 0, 5);
    const { spec, store, source, engine } = setup({
      backoff: { initialMs: 1, maxMs: 2 },
      breaker: { threshold: 3, halfOpenAfterMs: 3_600_000 },
      now: () => now,
    });
    source.failWith = { message: 'timeout', class: 'transient' };
    await store.register(spec);
    const schedules = nextSchedules(engine, 3);
    engine.start();
    const states = (await schedules).map((s) => s.state);
    await engine.stop();
    expect(states).toEqual(['backoff', 'backoff', 'failing']);
    // On the engine's clock, which stands still: the wait is the breaker's hour, whatever the machine.
    expect(engine.status().nextAttemptAt! - now).toBeGreaterThan(3_500_000);
  });

  it('names what opened the circuit once, however many runs it skips', async () => {
    const { spec, store, source, engine } = setup({
      backoff: { initialMs: 1, maxMs: 2 },
      breaker: { threshold: 1, halfOpenAfterMs: 3_600_000 },
    });
    source.failWith = { message: 'timeout', class: 'transient' };
    await store.register(spec);
    engine.start();
    for (let i = 0; i < 4; i++) await engine.syncNow();
    await engine.stop();
    expect(source.fetches).toBe(1);
    expect(engine.status()).toMatchObject({
      state: 'failing',
      lastError: { message: 'circuit open: timeout' },
    });
  });

  it('recovers from a failure mid-run without losing or double counting', async () => {
    const { spec, store, source, engine } = setup({ backoff: { initialMs: 1, maxMs: 2 } });
    source.rows = rows(700, 3);
    source.failOnFetch = 4; // after three committed batches
    await store.register(spec);
    const schedules = nextSchedules(engine, 2);
    engine.start();
    expect((await schedules).map((s) => s.state)).toEqual(['backoff', 'idle']);
    await engine.stop();
    expect((await store.readState('events'))!.records).toBe(700);
    await expectEqualToReference(store, spec, source.rows);
  });

  it('notices a store that lost the dataset, resyncs from the start and says so until caught up', async () => {
    const { spec, store, source, engine } = setup();
    source.rows = rows(500, 4);
    await store.register(spec);
    engine.start();
    await engine.syncNow();
    store.forget('events');
    source.rows.push(
      ...rows(600, 5)
        .slice(500)
        .map((r) => ({ ...r, cursor: '9999' })),
    );
    const states: SyncStateName[] = [];
    engine.on('status', (s) => states.push(s.state));
    await engine.syncNow();
    await engine.stop();
    expect(states).toContain('resyncing');
    expect(engine.status().state).toBe('idle');
    expect((await store.readState('events'))!.records).toBe(600);
    await expectEqualToReference(store, spec, source.rows);
  });

  it('applies updates and tombstones as corrections', async () => {
    const { spec, store, source, engine } = setup();
    source.rows = rows(300, 6);
    await store.register(spec);
    engine.start();
    await engine.syncNow();
    source.rows = source.rows.map((r, i) => {
      if (i % 10 === 0) return { ...r, cursor: '5000', deleted: true };
      if (i % 10 === 1) return { ...r, cursor: '5000', time: r.time + 3_600_000, metrics: [1, 1] };
      return r;
    });
    await engine.syncNow();
    await engine.stop();
    expect((await store.readState('events'))!.records).toBe(270);
    await expectEqualToReference(store, spec, source.rows);
  });
});
