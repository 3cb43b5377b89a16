import { pino } from 'pino';
import { FreshnessWatch } from '../../src/live/freshness-watch';
import type { FreshnessUpdate } from '../../src/query/status-frames';
import { MemoryStore } from '../../src/store/memory';
import { SyncManager } from '../../src/sync/manager';
import { datasetSpec } from '../helpers';
import { row } from '../http/harness';
import { ArraySource } from '../sync/array-source';
import { ManualClock } from '../sync/manual-clock';

const T0 = Date.UTC(2026, 0, 5);

/** One dataset (staleAfter 2 min, a sync every hour unless asked) on a clock the test moves. */
async function watched(minGapMs = 250) {
  const clock = new ManualClock(T0 + 3_600_000);
  const spec = datasetSpec({ sync: { interval: '1h', batchSize: 100, lag: '0s', lookback: '0s' } });
  const source = new ArraySource();
  source.rows = [row(1, T0, 'US', 1), row(2, T0, 'DE', 2)];
  const store = new MemoryStore();
  const sync = new SyncManager([spec], () => source, store, pino({ level: 'silent' }), {
    now: clock.now,
    setTimer: clock.setTimer,
    random: () => 1,
  });
  const updates: FreshnessUpdate[] = [];
  const watch = new FreshnessWatch(sync, (u) => updates.push(u), {
    now: clock.now,
    setTimer: clock.setTimer,
    minGapMs,
  });
  await sync.start();
  const engine = sync.get('events')!;
  await engine.syncNow();
  return { clock, source, sync, engine, updates, watch };
}

describe('FreshnessWatch', () => {
  it('publishes a change of state at once, without waiting for any timer', async () => {
    const { clock, source, sync, engine, updates, watch } = await watched();
    clock.advance(1_000);
    const before = updates.length;
    source.failWith = { message: 'relation "events" does not exist', class: 'permanent' };
    await engine.syncNow();
    const failing = updates.slice(before).find((u) => u.state === 'failing');
    expect(failing).toMatchObject({
      dataset: 'events',
      at: clock.now(),
      incomplete: false,
      notice: { text: 'events: last error: relation "events" does not exist' },
      row: { state: 'failing', error_class: 'permanent', records: 2 },
    });
    watch.close();
    await sync.stop();
  });

  it('turns the dataset stale when its last success is staleAfter old, with no run to say so', async () => {
    const { clock, sync, engine, updates, watch } = await watched();
    const lastSuccessAt = engine.status().lastSuccessAt!;
    // The first sync's last update is due once the gap is over.
    clock.advance(250);
    const before = updates.length;
    // Time passes; nothing runs (the next run is an hour away), and ages alone publish nothing.
    clock.advance(118_750);
    expect(updates.length).toBe(before);
    clock.advance(1_001);
    expect(updates.length).toBe(before + 1);
    expect(updates.at(-1)).toMatchObject({
      stale: true,
      at: lastSuccessAt + 120_001,
      ageSeconds: 120,
      notice: { severity: 'warning', text: 'events: last synced 2 min ago; threshold 2 min' },
      row: { stale: true },
    });
    watch.close();
    await sync.stop();
  });

  it('publishes at most one update per minGapMs, and the last one always goes out', async () => {
    const { clock, source, sync, engine, updates, watch } = await watched(1_000);
    clock.advance(5_000);
    const before = updates.length;
    // Three runs within the same moment: each one changes the status several times.
    for (let i = 0; i < 3; i++) {
      source.rows.push(row(10 + i, T0, 'FR', i));
      await engine.syncNow();
    }
    expect(updates.length - before).toBe(1);
    clock.advance(1_000);
    expect(updates.length - before).toBe(2);
    expect(updates.at(-1)).toMatchObject({ state: 'idle', records: 5, row: { records: 5 } });
    watch.close();
    await sync.stop();
  });

  it('marks every update incomplete from a store loss until the resync catches up', async () => {
    const { clock, sync, engine, updates, watch } = await watched();
    clock.advance(5_000);
    const store = (engine as unknown as { store: MemoryStore }).store;
    store.forget('events');
    const before = updates.length;
    await engine.checkStore();
    expect(updates[before]).toMatchObject({
      incomplete: true,
      state: 'resyncing',
      notice: { text: expect.stringContaining('totals are incomplete until it catches up') },
    });
    // The resync runs at once; its end is published after the gap.
    await engine.syncNow();
    clock.advance(250);
    expect(updates.at(-1)).toMatchObject({ incomplete: false, state: 'idle', notice: null, records: 2 });
    watch.close();
    await sync.stop();
  });
});
