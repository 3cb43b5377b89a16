import { pino } from 'pino';
import { SyncEngine, type EngineOptions } from '../../src/sync/engine';
import type { SyncStateName } from '../../src/sync/status';
import { freshnessOf } from '../../src/query/freshness';
import { MemoryStore } from '../../src/store/memory';
import type { SourceRecord } from '../../src/sources/types';
import { datasetSpec, prng } from '../helpers';
import { referenceCells } from '../store/reference';
import { ArraySource } from './array-source';
import { ManualClock } from './manual-clock';

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
  it('reads on from the stored position when another write got in first, finishing pending work first', async () => {
    const { spec, store, source, engine } = setup();
    source.rows = rows(450, 7);
    await store.register(spec);
    // The second batch meets a store that another writer changed after it was planned.
    const apply = store.applyBatch.bind(store);
    let calls = 0;
    store.applyBatch = async (dataset, batch) =>
      ++calls === 2 ? { applied: false, reason: 'conflict' } : apply(dataset, batch);
    const finishPending = jest.spyOn(store, 'finishPending');
    const states: SyncStateName[] = [];
    engine.on('status', (s) => states.push(s.state));
    engine.start();
    await engine.syncNow();
    await engine.stop();
    expect(states).not.toContain('resyncing');
    expect(engine.status()).toMatchObject({ state: 'idle', lastError: null });
    // Once at the start of each run, and once more after the conflict, before reading again.
    expect(finishPending.mock.calls.length).toBeGreaterThanOrEqual(3);
    expect((await store.readState('events'))!.records).toBe(450);
    await expectEqualToReference(store, spec, source.rows);
  });
});

describe('SyncEngine on a clock the test moves', () => {
  const UPSTREAM_DOWN = { message: 'connect ECONNREFUSED 10.0.0.5:5432', class: 'transient' as const };

  function clocked(options: EngineOptions = {}, sync: { interval?: string; permanentRetry?: string } = {}) {
    const clock = new ManualClock(T0 + 86_400_000);
    const made = setup(
      { now: clock.now, setTimer: clock.setTimer, ...options },
      {
        sync: {
          interval: sync.interval ?? '5s',
          batchSize: 100,
          lag: '0s',
          lookback: '0s',
          ...(sync.permanentRetry ? { permanentRetry: sync.permanentRetry } : {}),
        },
      },
    );
    return { clock, ...made };
  }

  /** Moves the clock by `ms` and resolves with the decision taken after the run that woke up. */
  async function step(clock: ManualClock, engine: SyncEngine, ms: number) {
    const next = nextSchedules(engine, 1);
    clock.advance(ms);
    return (await next)[0]!;
  }

  it('costs a blip of 3 s about as long, not 30 s: the first retry after it syncs', async () => {
    const { clock, spec, store, source, engine } = clocked({ random: () => 1 });
    source.rows = rows(10);
    await store.register(spec);
    const first = nextSchedules(engine, 1);
    engine.start();
    expect(await first).toEqual([{ delayMs: 5_000, state: 'idle' }]);

    source.failWith = UPSTREAM_DOWN;
    const outageStart = clock.now() + 5_000;
    const outageEnd = outageStart + 3_000;
    const states: SyncStateName[] = [];
    let delay = 5_000;
    for (;;) {
      const next = nextSchedules(engine, 1);
      clock.advance(delay);
      if (clock.now() >= outageEnd) source.failWith = null;
      const [decision] = await next;
      states.push(decision!.state);
      if (decision!.state === 'idle') break;
      delay = decision!.delayMs;
    }
    await engine.stop();
    // Full jitter at its worst (every wait as long as its cap): runs at +0, +0.5, +1, +2 s fail, +4 s syncs.
    expect(clock.now() - outageEnd).toBe(1_000);
    expect(states).toEqual(['backoff', 'backoff', 'backoff', 'backoff', 'idle']);
    expect(source.fetches).toBe(1 + 4 + 1);
  });

  it('opens the circuit only after 30 s of failures, then probes at jittered times', async () => {
    const { clock, spec, store, source, engine } = clocked({ random: prng(11) });
    source.failWith = UPSTREAM_DOWN;
    await store.register(spec);
    const first = nextSchedules(engine, 1);
    engine.start();
    let decision = (await first)[0]!;
    const failingFrom = clock.now();
    while (decision.state === 'backoff') decision = await step(clock, engine, decision.delayMs);
    expect(clock.now() - failingFrom).toBeGreaterThanOrEqual(30_000);
    const probes: number[] = [];
    for (let i = 0; i < 6; i++) {
      expect(decision.state).toBe('failing');
      probes.push(decision.delayMs);
      decision = await step(clock, engine, decision.delayMs);
    }
    await engine.stop();
    for (const probe of probes) {
      expect(probe).toBeGreaterThanOrEqual(15_000);
      expect(probe).toBeLessThanOrEqual(30_000);
    }
    expect(new Set(probes).size).toBe(probes.length);
  });

  it('waits sync.permanentRetry after a permanent error, and "sync now" retries at once', async () => {
    const { clock, spec, store, source, engine } = clocked({}, { permanentRetry: '90s' });
    source.failWith = { message: 'relation "public.evnts" does not exist', class: 'permanent' };
    source.rows = rows(20);
    await store.register(spec);
    const first = nextSchedules(engine, 1);
    engine.start();
    expect(await first).toEqual([{ delayMs: 90_000, state: 'failing' }]);
    source.failWith = null;
    const before = clock.now();
    await engine.syncNow();
    expect(clock.now()).toBe(before);
    expect(engine.status()).toMatchObject({ state: 'idle', records: 20, failingSince: null });
    await engine.stop();
  });

  it('records a failure and its recovery as one region, with the runs and the last error', async () => {
    const { clock, spec, store, source, engine } = clocked({ random: () => 1 });
    source.rows = rows(5);
    source.failWith = UPSTREAM_DOWN;
    await store.register(spec);
    const first = nextSchedules(engine, 1);
    engine.start();
    const failingSince = clock.now();
    let decision = (await first)[0]!;
    decision = await step(clock, engine, decision.delayMs);
    decision = await step(clock, engine, decision.delayMs);
    source.failWith = null;
    decision = await step(clock, engine, decision.delayMs);
    expect(decision.state).toBe('idle');
    await engine.stop();
    expect(await store.readRegions('events', 0, clock.now(), 10)).toEqual([
      {
        kind: 'failure',
        startedAt: failingSince,
        endedAt: clock.now(),
        count: 3,
        error: { message: UPSTREAM_DOWN.message, class: 'transient', origin: 'upstream' },
      },
    ]);
    expect((await store.readEvents('events', 0, clock.now(), 10)).map((e) => e.outcome)).toEqual([
      'success',
      'failure',
      'failure',
      'failure',
    ]);
  });

  it('notices a lost store on the read path: resyncing at once, and the resync starts without waiting', async () => {
    const { clock, spec, store, source, engine } = clocked();
    source.rows = rows(250, 2);
    await store.register(spec);
    const first = nextSchedules(engine, 1);
    engine.start();
    await first;
    store.forget('events');
    const resynced = nextSchedules(engine, 1);
    await engine.checkStore();
    const lostAt = clock.now();
    expect(engine.status()).toMatchObject({ state: 'resyncing', resyncSince: lostAt });
    expect(freshnessOf(spec, engine.status(), clock.now())).toMatchObject({
      incomplete: true,
      notice: { severity: 'warning', text: expect.stringContaining('totals are incomplete') },
    });
    // The loop woke up: the clock has not moved, yet the dataset is whole again.
    expect(await resynced).toEqual([{ delayMs: 5_000, state: 'idle' }]);
    expect(clock.now()).toBe(lostAt);
    expect(engine.status()).toMatchObject({ resyncSince: null, records: 250 });
    expect(freshnessOf(spec, engine.status(), clock.now())).toMatchObject({
      incomplete: false,
      notice: null,
    });
    expect((await store.readState('events'))!.resync).toBeNull();
    expect(await store.readRegions('events', 0, clock.now(), 10)).toEqual([
      { kind: 'resync', startedAt: lostAt, endedAt: lostAt, count: 250 },
    ]);
    await engine.stop();
  });

  it('keeps a resync and its progress across failed runs and a restart until it has caught up', async () => {
    const { clock, spec, store, source, engine } = clocked({ random: () => 1 });
    source.rows = rows(450, 3);
    await store.register(spec);
    const first = nextSchedules(engine, 1);
    engine.start();
    await first;
    const lastSuccessAt = engine.status().lastSuccessAt;

    store.forget('events');
    // The resync commits two batches, then the upstream goes away.
    source.failOnFetch = 3;
    const failed = nextSchedules(engine, 1);
    await engine.checkStore();
    const lostAt = clock.now();
    expect((await failed)[0]!.state).toBe('backoff');
    expect(engine.status()).toMatchObject({ state: 'backoff', resyncSince: lostAt, records: 200 });
    expect(freshnessOf(spec, engine.status(), clock.now()).incomplete).toBe(true);
    expect((await store.readState('events'))!.resync).toMatchObject({ since: lostAt });
    await engine.stop();

    // A new process on the same store: what it reports before its first run comes from the store.
    clock.advance(60_000);
    const restarted = new SyncEngine(spec, source, store, log, { now: clock.now, setTimer: clock.setTimer });
    await restarted.restore();
    expect(restarted.status()).toMatchObject({
      state: 'resyncing',
      resyncSince: lostAt,
      records: 200,
      lastSuccessAt,
      failingSince: lostAt,
    });
    expect(freshnessOf(spec, restarted.status(), clock.now())).toMatchObject({
      incomplete: true,
      records: 200,
      notice: { text: expect.stringContaining('totals are incomplete') },
    });
    const caughtUp = nextSchedules(restarted, 1);
    restarted.start();
    expect((await caughtUp)[0]!.state).toBe('idle');
    await restarted.stop();
    expect(restarted.status()).toMatchObject({ resyncSince: null, records: 450 });
    expect((await store.readState('events'))!.resync).toBeNull();
    const regions = await store.readRegions('events', 0, clock.now(), 10);
    expect(regions.map((r) => [r.kind, r.startedAt])).toEqual([
      ['failure', lostAt],
      ['resync', lostAt],
      ['pause', lostAt],
    ]);
    await expectEqualToReference(store, spec, source.rows);
  });

  it('reports after a restart what the store holds, and a gap in syncing as a pause', async () => {
    const { clock, spec, store, source, engine } = clocked();
    source.rows = rows(300, 8);
    await store.register(spec);
    const first = nextSchedules(engine, 1);
    engine.start();
    await first;
    const before = engine.status();
    await engine.stop();

    clock.advance(120_000);
    const restarted = new SyncEngine(spec, source, store, log, { now: clock.now, setTimer: clock.setTimer });
    await restarted.restore();
    expect(restarted.status()).toMatchObject({
      state: 'idle',
      records: 300,
      version: before.version,
      lastSuccessAt: before.lastSuccessAt,
      generation: before.generation,
    });
    expect(freshnessOf(spec, restarted.status(), clock.now())).toMatchObject({
      records: 300,
      ageSeconds: 120,
      stale: false,
    });
    expect(await store.readRegions('events', 0, clock.now(), 10)).toEqual([
      {
        kind: 'pause',
        startedAt: before.lastAttemptAt! + before.lastRunDurationMs!,
        endedAt: clock.now(),
        count: 0,
      },
    ]);
  });
});
