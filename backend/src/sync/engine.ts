import { EventEmitter } from 'node:events';
import {
  BrokenCircuitError,
  ConsecutiveBreaker,
  ExponentialBackoff,
  circuitBreaker,
  fullJitterGenerator,
  handleWhen,
  type CircuitBreakerPolicy,
  type IBackoff,
} from 'cockatiel';
import type { Logger } from 'pino';
import type { DatasetSpec } from '../config/dataset';
import type { Position, Source } from '../sources/types';
import type { Store, SyncEvent, SyncState } from '../store/types';
import { classify, type ClassifiedError } from './errors';
import { initialStatus, type DatasetStatus, type SyncStateName } from './status';

export interface EngineOptions {
  now?: () => number;
  /** Capped exponential backoff with full jitter for transient failures. */
  backoff?: { initialMs: number; maxMs: number };
  /** Consecutive transient failures that open the circuit, and how long it stays open. */
  breaker?: { threshold: number; halfOpenAfterMs: number };
  /** How long to wait after a permanent error (bad credentials, missing table) before trying again. */
  permanentRetryMs?: number;
  /** How often retention is enforced. */
  trimEveryMs?: number;
}

/** Emitted after every committed batch that changed data: what the change bus carries. */
export interface ChangeEvent {
  dataset: string;
  version: number;
  /** Touched base buckets: [from, to) in epoch ms. */
  from: number;
  to: number;
  upserts: number;
  deletes: number;
  at: number;
}

/** Emitted after every run, for metrics. */
export interface RunEvent {
  dataset: string;
  outcome: 'success' | 'failure';
  durationMs: number;
  upserts: number;
  deletes: number;
  error?: ClassifiedError;
  skipped?: boolean;
}

interface EngineEvents {
  change: [ChangeEvent];
  run: [RunEvent];
  status: [DatasetStatus];
  /** The wait before the next run, decided after each run. */
  scheduled: [{ delayMs: number; state: SyncStateName }];
}

const DEFAULTS = {
  backoff: { initialMs: 500, maxMs: 60_000 },
  breaker: { threshold: 5, halfOpenAfterMs: 30_000 },
  permanentRetryMs: 5 * 60_000,
  trimEveryMs: 60_000,
};

const PROGRESS_EVERY_MS = 2_000;
/** Events kept while the store cannot take them (one per failed run: minutes of outage). */
const UNRECORDED_KEPT = 100;

class StateLostError extends Error {}

/**
 * One sync loop for one dataset: fetch a batch after the committed position, apply it and
 * the new position atomically, repeat until the upstream has nothing more, then wait for
 * the interval. Failures back off with full jitter behind a circuit breaker; permanent
 * ones wait long. A store that lost the dataset's state is noticed on the next apply and
 * the dataset is read again from the start.
 */
export class SyncEngine extends EventEmitter<EngineEvents> {
  private readonly now: () => number;
  private readonly options: Required<Omit<EngineOptions, 'now'>>;
  private readonly breaker: CircuitBreakerPolicy;
  private readonly backoffFactory: ExponentialBackoff<number>;
  private backoff: IBackoff<unknown> | undefined;
  private current: DatasetStatus;
  private generation: string | null = null;
  private lastTrimAt = 0;
  private lastEstimateAt = 0;
  /** The last failure of a run that did call the upstream (skipped runs report it). */
  private lastFailure: ClassifiedError | null = null;
  private readonly unrecorded: SyncEvent[] = [];
  private stopped = true;
  private loopDone: Promise<void> = Promise.resolve();
  private running: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private abort = new AbortController();
  private readonly waiters: (() => void)[] = [];

  constructor(
    readonly spec: DatasetSpec,
    readonly source: Source,
    private readonly store: Store,
    private readonly log: Logger,
    options: EngineOptions = {},
  ) {
    super();
    this.now = options.now ?? Date.now;
    this.options = {
      backoff: options.backoff ?? DEFAULTS.backoff,
      breaker: options.breaker ?? DEFAULTS.breaker,
      permanentRetryMs: options.permanentRetryMs ?? DEFAULTS.permanentRetryMs,
      trimEveryMs: options.trimEveryMs ?? DEFAULTS.trimEveryMs,
    };
    this.backoffFactory = new ExponentialBackoff({
      generator: fullJitterGenerator,
      initialDelay: this.options.backoff.initialMs,
      maxDelay: this.options.backoff.maxMs,
    });
    this.breaker = circuitBreaker(
      handleWhen((err) => classify(err).class === 'transient'),
      {
        halfOpenAfter: this.options.breaker.halfOpenAfterMs,
        breaker: new ConsecutiveBreaker(this.options.breaker.threshold),
      },
    );
    this.current = initialStatus(spec.name);
  }

  status(): DatasetStatus {
    return structuredClone(this.current);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.abort = new AbortController();
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.wake?.();
    await this.loopDone;
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  /**
   * Runs a sync now, or joins the one under way, and resolves when a run that started
   * after this call has finished.
   */
  syncNow(): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      if (!this.running) this.wake?.();
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const waiting = this.waiters.splice(0);
      this.running = this.attempt();
      const delay = await this.running.then(() => this.nextDelay());
      this.running = null;
      for (const resolve of waiting) resolve();
      if (this.stopped) break;
      if (this.waiters.length > 0) continue;
      this.update({ nextAttemptAt: this.now() + delay });
      this.emit('scheduled', { delayMs: delay, state: this.current.state });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** Time until the next run, from the outcome of the last one. */
  private nextDelay(): number {
    const { state, lastError } = this.current;
    if (state === 'idle' || state === 'syncing' || state === 'resyncing') return this.spec.sync.intervalMs;
    if (lastError?.class === 'permanent') return this.options.permanentRetryMs;
    if (state === 'failing') return this.options.breaker.halfOpenAfterMs;
    this.backoff = (this.backoff ?? this.backoffFactory).next(undefined);
    return this.backoff.duration;
  }

  private async attempt(): Promise<void> {
    const startedAt = this.now();
    this.update({ lastAttemptAt: startedAt, nextAttemptAt: null });
    let totals = { upserts: 0, deletes: 0 };
    try {
      totals = await this.breaker.execute(() => this.run(totals));
      this.backoff = undefined;
      const endedAt = this.now();
      this.update({
        state: 'idle',
        lastSuccessAt: endedAt,
        lastRunDurationMs: endedAt - startedAt,
        consecutiveFailures: 0,
        backfill: null,
      });
      await this.record({ startedAt, endedAt, outcome: 'success', records: totals.upserts + totals.deletes });
      this.emit('run', {
        dataset: this.spec.name,
        outcome: 'success',
        durationMs: endedAt - startedAt,
        ...totals,
      });
    } catch (err) {
      if (this.stopped && this.abort.signal.aborted) return;
      const skipped = err instanceof BrokenCircuitError;
      // While the circuit is open the upstream is not called: report the failure that opened it.
      const opened = this.lastFailure;
      const error: ClassifiedError = skipped
        ? {
            message: `circuit open: ${opened?.message ?? 'too many failures'}`,
            class: opened?.class ?? 'transient',
            origin: opened?.origin ?? 'internal',
          }
        : classify(err);
      if (!skipped) this.lastFailure = error;
      const endedAt = this.now();
      const failures = this.current.consecutiveFailures + 1;
      const state: SyncStateName =
        error.class === 'permanent' || skipped || failures >= this.options.breaker.threshold
          ? 'failing'
          : 'backoff';
      if (!skipped) this.log.warn({ err, class: error.class, origin: error.origin }, 'sync run failed');
      this.update({
        state,
        consecutiveFailures: failures,
        lastError: { message: error.message, class: error.class, origin: error.origin, at: endedAt },
        lastRunDurationMs: endedAt - startedAt,
      });
      await this.record({
        startedAt,
        endedAt,
        outcome: 'failure',
        records: totals.upserts + totals.deletes,
        error: { message: error.message, class: error.class, origin: error.origin },
      });
      this.emit('run', {
        dataset: this.spec.name,
        outcome: 'failure',
        durationMs: endedAt - startedAt,
        ...totals,
        error,
        skipped,
      });
    }
  }

  /** One run: every page the upstream has after the committed position. */
  private async run(totals: {
    upserts: number;
    deletes: number;
  }): Promise<{ upserts: number; deletes: number }> {
    const { name } = this.spec;
    // No state: a first sync, or (when this engine had synced before) a store that lost it.
    const state = (await this.store.readState(name)) ?? (await this.begin(this.generation !== null));
    try {
      await this.readPages(state, totals);
    } catch (err) {
      if (!(err instanceof StateLostError)) throw err;
      this.log.warn('the store lost this dataset; reading it again from the start');
      await this.readPages(await this.begin(true), totals);
    }
    await this.trimIfDue();
    return totals;
  }

  /** Starts a fresh copy: an empty generation in the store and a backfill from the start. */
  private async begin(resync: boolean): Promise<SyncState> {
    const state = await this.store.resetDataset(this.spec.name);
    this.generation = state.generation;
    const remaining = await this.estimate(null);
    this.update({
      state: resync ? 'resyncing' : 'syncing',
      generation: state.generation,
      cursor: null,
      backfill: { applied: 0, remaining, progress: remaining === null ? null : 0 },
    });
    return state;
  }

  private async readPages(state: SyncState, totals: { upserts: number; deletes: number }): Promise<void> {
    const { name, sync } = this.spec;
    this.generation = state.generation;
    let committed: Position | null = state.position;
    let after = committed;
    let rewindMs = committed && sync.lookbackMs > 0 ? sync.lookbackMs : undefined;
    if (this.current.state !== 'resyncing' && this.current.state !== 'syncing')
      this.update({ state: 'syncing' });
    for (;;) {
      const batchStart = this.now();
      const page = await this.source.fetch({
        after,
        rewindMs,
        limit: sync.batchSize,
        signal: this.abort.signal,
      });
      rewindMs = undefined;
      // A re-read of the lookback window never moves the committed position backwards.
      const advance =
        page.last && (!committed || this.source.compare(page.last, committed) > 0) ? page.last : null;
      const result = await this.store.applyBatch(name, {
        generation: state.generation,
        records: page.records,
        position: advance,
        cutoffMs: this.now() - this.spec.retentionMs,
      });
      if (!result.applied) throw new StateLostError();
      if (advance) committed = advance;
      after = page.last ?? after;
      totals.upserts += result.upserts;
      totals.deletes += result.deletes;
      const backfill = this.current.backfill;
      this.update({
        cursor: committed,
        version: result.version,
        recordsApplied: this.current.recordsApplied + result.upserts + result.deletes,
        lastBatchDurationMs: this.now() - batchStart,
        backfill: backfill && (await this.progress(backfill.applied + page.records.length, after)),
      });
      if (result.touchedFrom !== null && result.touchedTo !== null) {
        this.emit('change', {
          dataset: name,
          version: result.version,
          from: result.touchedFrom,
          to: result.touchedTo + this.spec.resolutionMs,
          upserts: result.upserts,
          deletes: result.deletes,
          at: this.now(),
        });
      }
      if (page.done || page.records.length === 0 || this.stopped) break;
    }
    const held = await this.store.readState(name);
    if (held) this.update({ records: held.records, version: held.version });
  }

  /** Backfill progress; the upstream is asked for an estimate at most once per PROGRESS_EVERY_MS. */
  private async progress(applied: number, after: Position | null): Promise<DatasetStatus['backfill']> {
    const before = this.current.backfill;
    let remaining = before?.remaining ?? null;
    if (this.now() - this.lastEstimateAt >= PROGRESS_EVERY_MS) {
      this.lastEstimateAt = this.now();
      remaining = await this.estimate(after);
    } else if (remaining !== null && before) {
      remaining = Math.max(0, remaining - (applied - before.applied));
    }
    return {
      applied,
      remaining,
      progress: remaining === null ? null : Math.min(1, applied / Math.max(1, applied + remaining)),
    };
  }

  private async estimate(after: Position | null): Promise<number | null> {
    if (!this.source.estimateRemaining) return null;
    try {
      return await this.source.estimateRemaining(after);
    } catch {
      return null;
    }
  }

  private async trimIfDue(): Promise<void> {
    const now = this.now();
    if (now - this.lastTrimAt < this.options.trimEveryMs) return;
    this.lastTrimAt = now;
    const removed = await this.store.trim(this.spec.name, now - this.spec.retentionMs);
    if (removed > 0) this.log.info({ removed }, 'trimmed records past retention');
  }

  /**
   * Stores the run's event. A run that failed because the store was away could not be
   * recorded then: events wait here (a bounded number) and go in order once it answers.
   */
  private async record(event: SyncEvent): Promise<void> {
    this.unrecorded.push(event);
    if (this.unrecorded.length > UNRECORDED_KEPT) this.unrecorded.shift();
    try {
      while (this.unrecorded.length > 0) {
        await this.store.appendEvent(this.spec.name, this.unrecorded[0]!);
        this.unrecorded.shift();
      }
      await this.store.writeStatus(this.spec.name, { ...this.current });
    } catch (err) {
      this.log.debug({ err, pending: this.unrecorded.length }, 'could not record the sync event yet');
    }
  }

  private update(patch: Partial<DatasetStatus>): void {
    this.current = { ...this.current, ...patch };
    // Copying the status for nobody would cost on every batch.
    if (this.listenerCount('status') > 0) this.emit('status', this.status());
  }
}
