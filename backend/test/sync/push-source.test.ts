/**
 * The engine's hooks for push sources (a replication stream): changes a source reports are read
 * at once, positions are acknowledged to the source only after the store committed them, and a
 * source that cannot go on from the committed position gets the dataset read again.
 */
import { pino } from 'pino';
import { MemoryStore } from '../../src/store/memory';
import type { ApplyBatch } from '../../src/store/types';
import {
  ResyncNeededError,
  type FetchRequest,
  type FetchResult,
  type Position,
  type SourceRecord,
} from '../../src/sources/types';
import { SyncEngine } from '../../src/sync/engine';
import { datasetSpec } from '../helpers';
import { ArraySource } from './array-source';
import { ManualClock } from './manual-clock';

const T0 = Date.UTC(2026, 0, 5);

function rows(from: number, n: number): SourceRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    id: String(from + i),
    time: T0 + (from + i) * 1000,
    cursor: String(from + i),
    deleted: false,
    dims: ['US', 'mobile'],
    metrics: [1, 1],
    distinct: ['u'],
  }));
}

class PushSource extends ArraySource {
  private listener: (() => void) | null = null;
  resyncOnce = false;
  readonly log: string[];

  constructor(log: string[]) {
    super();
    this.log = log;
  }

  onChanges(listener: () => void): void {
    this.listener = listener;
  }

  committed(position: Position): void {
    this.log.push(`committed ${position.cursor}`);
  }

  push(records: SourceRecord[]): void {
    this.rows.push(...records);
    this.listener?.();
  }

  override async fetch(request: FetchRequest): Promise<FetchResult> {
    if (this.resyncOnce) {
      this.resyncOnce = false;
      throw new ResyncNeededError('the table was truncated');
    }
    return super.fetch(request);
  }
}

function setup() {
  const spec = datasetSpec({ sync: { interval: '1h', batchSize: 10, lag: '0s', lookback: '0s' } });
  const clock = new ManualClock(T0);
  const log: string[] = [];
  const store = new MemoryStore();
  const apply = store.applyBatch.bind(store);
  store.applyBatch = async (dataset: string, batch: ApplyBatch) => {
    const result = await apply(dataset, batch);
    if (batch.position) log.push(`stored ${batch.position.cursor}`);
    return result;
  };
  const source = new PushSource(log);
  const engine = new SyncEngine(spec, source, store, pino({ level: 'silent' }), {
    now: clock.now,
    setTimer: clock.setTimer,
  });
  return { spec, store, source, engine, log, clock };
}

function nextRun(engine: SyncEngine): Promise<void> {
  return new Promise((resolve) => engine.once('run', () => resolve()));
}

test('changes a push source reports are read at once, not at the next interval', async () => {
  const { store, source, engine, spec, clock } = setup();
  source.rows = rows(0, 25);
  await store.register(spec);
  engine.start();
  await nextRun(engine);
  expect((await store.readState('events'))!.records).toBe(25);

  const ran = nextRun(engine);
  source.push(rows(25, 5));
  await ran;
  // The clock never moved: the interval (1 h) did not pass.
  expect(clock.time).toBe(T0);
  expect((await store.readState('events'))!.records).toBe(30);
  await engine.stop();
});

test('the source is told a position only after the store has committed it', async () => {
  const { store, source, engine, spec, log } = setup();
  source.rows = rows(0, 35);
  await store.register(spec);
  engine.start();
  await nextRun(engine);
  expect(log).toEqual([
    'stored 9',
    'committed 9',
    'stored 19',
    'committed 19',
    'stored 29',
    'committed 29',
    'stored 34',
    'committed 34',
  ]);
  await engine.stop();
});

test('a source that cannot go on from the committed position gets the dataset read again', async () => {
  const { store, source, engine, spec } = setup();
  source.rows = rows(0, 12);
  await store.register(spec);
  engine.start();
  await nextRun(engine);
  const before = (await store.readState('events'))!.generation;

  source.rows = rows(100, 3);
  source.resyncOnce = true;
  await engine.syncNow();
  const after = (await store.readState('events'))!;
  expect(after.generation).not.toBe(before);
  expect(after.records).toBe(3);
  expect(engine.status()).toMatchObject({ state: 'idle', resyncSince: null });
  await engine.stop();
});
