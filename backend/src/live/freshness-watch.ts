import type { DatasetSpec } from '../config/dataset';
import { freshnessUpdate, type FreshnessUpdate } from '../query/status-frames';
import { realTimer, type SetTimer, type SyncEngine } from '../sync/engine';
import type { SyncManager } from '../sync/manager';

export interface FreshnessWatchOptions {
  now?: () => number;
  setTimer?: SetTimer;
  /** At most one update per dataset per this many milliseconds; the last one always goes out. */
  minGapMs?: number;
}

interface Watched {
  spec: DatasetSpec;
  engine: SyncEngine;
  /** What the last published update showed, ages aside. */
  shown: string | null;
  /** Its state, staleness and notice: a change of these goes out at once. */
  level: string | null;
  lastPublishedAt: number;
  trailing: (() => void) | null;
  staleTimer: (() => void) | null;
}

/**
 * Publishes each dataset's freshness whenever what a panel shows of it changes. A change of
 * state (failing, backoff, resyncing, back to normal), of staleness, completeness or notice
 * goes out at once; the rest (a success's time, progress, the next attempt) at most once per
 * `minGapMs`, the latest winning. Between sync runs nothing changes in the status but time,
 * and time makes a dataset stale: a timer fires when the last success is `staleAfter` old, so
 * the stale notice goes out then rather than at the next run. Ages are not a change (they
 * move every moment); clients add the time since `at`.
 */
export class FreshnessWatch {
  private readonly now: () => number;
  private readonly setTimer: SetTimer;
  private readonly minGapMs: number;
  private readonly watched = new Map<string, Watched>();
  private readonly listeners: (() => void)[] = [];

  constructor(
    sync: SyncManager,
    private readonly publish: (update: FreshnessUpdate) => void,
    options: FreshnessWatchOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.setTimer = options.setTimer ?? realTimer;
    this.minGapMs = options.minGapMs ?? 250;
    for (const engine of sync.engines.values()) {
      const entry: Watched = {
        spec: engine.spec,
        engine,
        shown: null,
        level: null,
        lastPublishedAt: Number.NEGATIVE_INFINITY,
        trailing: null,
        staleTimer: null,
      };
      this.watched.set(engine.spec.name, entry);
      const listener = () => this.check(entry);
      engine.on('status', listener);
      this.listeners.push(() => engine.off('status', listener));
    }
  }

  /** The dataset's freshness as of now (SSE greetings start with it). */
  current(dataset: string): FreshnessUpdate | undefined {
    const entry = this.watched.get(dataset);
    return entry && freshnessUpdate(entry.spec, entry.engine.status(), this.now());
  }

  close(): void {
    for (const off of this.listeners.splice(0)) off();
    for (const entry of this.watched.values()) {
      entry.trailing?.();
      entry.staleTimer?.();
      entry.trailing = entry.staleTimer = null;
    }
  }

  private check(entry: Watched): void {
    const now = this.now();
    const update = freshnessUpdate(entry.spec, entry.engine.status(), now);
    this.armStaleTimer(entry, update, now);
    if (signature(update) === entry.shown) return;
    const wait = entry.lastPublishedAt + this.minGapMs - now;
    if (wait <= 0 || level(update) !== entry.level) {
      entry.trailing?.();
      entry.trailing = null;
      this.send(entry, update);
      return;
    }
    if (entry.trailing) return;
    entry.trailing = this.setTimer(() => {
      entry.trailing = null;
      const latest = freshnessUpdate(entry.spec, entry.engine.status(), this.now());
      if (signature(latest) !== entry.shown) this.send(entry, latest);
    }, wait);
  }

  private send(entry: Watched, update: FreshnessUpdate): void {
    entry.shown = signature(update);
    entry.level = level(update);
    entry.lastPublishedAt = update.at;
    this.publish(update);
  }

  /** Fires just after the last success turns `staleAfter` old, when the dataset becomes stale with no run to say so. */
  private armStaleTimer(entry: Watched, update: FreshnessUpdate, now: number): void {
    entry.staleTimer?.();
    entry.staleTimer = null;
    if (update.stale || update.lastSyncAt === null) return;
    const wait = update.lastSyncAt + entry.spec.staleAfterMs + 1 - now;
    entry.staleTimer = this.setTimer(
      () => {
        entry.staleTimer = null;
        this.check(entry);
      },
      Math.max(0, wait),
    );
  }
}

/** What a viewer is told about the dataset's health; a routine run (idle → syncing → idle) does not change it. */
function level(update: FreshnessUpdate): string {
  const state = update.state === 'syncing' ? 'idle' : update.state;
  return JSON.stringify([state, update.stale, update.incomplete, update.notice?.text ?? null]);
}

function signature(update: FreshnessUpdate): string {
  const { age_seconds: _age, ...row } = update.row;
  return JSON.stringify([row, update.notice?.text ?? null]);
}
