import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { DatasetSpec } from '../config/dataset';
import { ResyncNeededError, type Position, type Source } from '../sources/types';
import {
  LeaseLostError,
  StoreError,
  type ApplyResult,
  type Operation,
  type ResyncMark,
  type Store,
  type SyncEvent,
  type SyncRegion,
  type SyncState,
} from '../store/types';
import { classify, type ClassifiedError } from './errors';
import { LeaseKeeper, type LeaseOptions } from './lease';
import { initialReconcile, Reconciler, type ReconcileReport } from './reconcile';
import { RETRY_DEFAULTS, RetryPolicy, type RetryOptions } from './retry';
import { restoredStatus } from './restore';
import { backfillOf, initialStatus, type DatasetStatus, type SyncStateName } from './status';

/** Runs `fn` after `ms`; the returned function cancels it. Tests pass a clock they move by hand. */
export type SetTimer = (fn: () => void, ms: number) => () => void;

/** Node's timers overflow past 2^31 - 1 ms (and would then fire at once): longer waits are cut to that. */
const LONGEST_TIMER_MS = 2_147_483_647;

export const realTimer: SetTimer = (fn, ms) => {
  const timer = setTimeout(fn, Math.min(ms, LONGEST_TIMER_MS));
  return () => clearTimeout(timer);
};

export interface EngineOptions {
  now?: () => number;
  setTimer?: SetTimer;
  /** Jitter of retry delays; tests make it deterministic. */
  random?: () => number;
  /** Exponential backoff with full jitter for transient failures (see sync/retry.ts). */
  backoff?: RetryOptions['backoff'];
  /** When the circuit opens, and how long it stays open before a probe (see sync/retry.ts). */
  breaker?: Partial<RetryOptions['breaker']>;
  /** How often retention is enforced. */
  trimEveryMs?: number;
  /** The dataset's sync lease: this replica's name, the TTL, the keeper's clock (sync/lease.ts). */
  lease?: LeaseOptions;
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
}

/** Emitted after every run's share of reconciliation, for metrics. */
export type ReconcileEvent = ReconcileReport & { dataset: string };

interface EngineEvents {
  change: [ChangeEvent];
  run: [RunEvent];
  reconcile: [ReconcileEvent];
  status: [DatasetStatus];
  /** The wait before the next run, decided after each run. */
  scheduled: [{ delayMs: number; state: SyncStateName }];
}

const TRIM_EVERY_MS = 60_000;
/** A replica that does not hold the lease reads the holder's status from the store at most this often. */
const MIRROR_EVERY_MS = 1_000;
/** While syncing, operators' controls (a pause) are read between batches at most this often. */
const CONTROL_EVERY_MS = 1_000;
const PROGRESS_EVERY_MS = 2_000;
/** Events kept while the store cannot take them (one per failed run: minutes of outage). */
const UNRECORDED_KEPT = 100;
/** A gap in syncing longer than this many sync intervals, across a restart, is annotated as a pause. */
const PAUSE_INTERVALS = 2;

class StateLostError extends Error {}
/** Another writer changed the dataset in the store between planning and writing: the store's side. */
class ConflictError extends StoreError {}

/** Times a run starts over from the stored position when another write got in first. */
const CONFLICT_RETRIES = 3;

/**
 * One sync loop for one dataset: fetch a batch after the committed position, apply it and
 * the new position atomically, repeat until the upstream has nothing more, then wait for
 * the interval. Failures wait as sync/retry.ts decides. A store that lost the dataset's
 * state is noticed on the next apply, or sooner by a reader (`checkStore`), and the dataset
 * is read again from the start, marked as a resync in the store until it has caught up.
 */
export class SyncEngine extends EventEmitter<EngineEvents> {
  private readonly now: () => number;
  private readonly setTimer: SetTimer;
  private readonly trimEveryMs: number;
  private readonly retry: RetryPolicy;
  private readonly reconciler: Reconciler | null;
  private current: DatasetStatus;
  private generation: string | null = null;
  private lastTrimAt = 0;
  private lastEstimateAt = 0;
  private readonly unrecorded: SyncEvent[] = [];
  private readonly unrecordedRegions: SyncRegion[] = [];
  private stopped = true;
  private loopDone: Promise<void> = Promise.resolve();
  private running: Promise<number> | null = null;
  private wake: (() => void) | null = null;
  /** A push source reported changes while a run was under way: run again when it ends. */
  private again = false;
  private abort = new AbortController();
  private readonly waiters: (() => void)[] = [];
  /** The dataset's sync lease: only its holder runs syncs; the others mirror the holder's status. */
  readonly lease: LeaseKeeper;
  private lastMirrorAt = 0;
  private leaseStarted: Promise<void> = Promise.resolve();
  /** Set when the lease was granted: the next run first takes up the status the last holder saved. */
  private takeUp = false;
  private lastControlAt = 0;

  constructor(
    readonly spec: DatasetSpec,
    readonly source: Source,
    private readonly store: Store,
    private readonly log: Logger,
    options: EngineOptions = {},
  ) {
    super();
    this.now = options.now ?? Date.now;
    this.setTimer = options.setTimer ?? realTimer;
    this.trimEveryMs = options.trimEveryMs ?? TRIM_EVERY_MS;
    this.retry = new RetryPolicy(
      {
        backoff: options.backoff ?? RETRY_DEFAULTS.backoff,
        breaker: { ...RETRY_DEFAULTS.breaker, ...options.breaker },
      },
      spec.sync.permanentRetryMs,
      options.random,
    );
    this.reconciler = Reconciler.for(spec, source, store, log, this.now);
    this.current = { ...initialStatus(spec.name), reconcile: this.reconciler && initialReconcile() };
    this.lease = new LeaseKeeper(store, spec.name, log, options.lease);
    this.current.lease = this.lease.status();
    this.lease.on('acquired', (grant) => this.tookLease(grant.previous));
    this.lease.on('lost', () => {
      // Stop writing now: the fetch under way is aborted, and the store refuses any write after it.
      this.abort.abort();
      this.update({ lease: this.lease.status() });
      this.wake?.();
    });
    this.lease.on('renewed', () => {
      this.update({ lease: this.lease.status() });
      // Controls set on another replica reach the holder here while it waits.
      if (!this.running) void this.controlChanged().then((changed) => changed && this.wake?.());
    });
    source.onChanges?.(() => this.changesArrived());
  }

  status(): DatasetStatus {
    return structuredClone({ ...this.current, lease: this.lease.status() });
  }

  /** Reads operators' controls now (one was just set on this replica), and obeys them at once when this replica holds the lease. */
  async controlsChanged(): Promise<void> {
    this.lastControlAt = 0;
    if (!this.lease.held) return this.mirror(true);
    if (!this.running) this.wake?.();
  }

  /**
   * Takes up what the store holds for the dataset (records, version, position, a resync under
   * way) and the status the last process saved (last success, last error, failures under
   * way), so a restarted service does not report a held dataset as empty or never synced. A
   * gap in syncing across the restart is recorded as a pause.
   */
  async restore(): Promise<void> {
    const { name } = this.spec;
    try {
      const [state, saved] = await Promise.all([this.store.readState(name), this.store.readStatus(name)]);
      const now = this.now();
      const restored = restoredStatus(this.current, state, saved, now);
      this.generation = restored.generation;
      this.update(restored);
      const lastActive =
        restored.lastAttemptAt === null ? null : restored.lastAttemptAt + (restored.lastRunDurationMs ?? 0);
      if (lastActive !== null && now - lastActive > PAUSE_INTERVALS * this.spec.sync.intervalMs) {
        this.unrecordedRegions.push({ kind: 'pause', startedAt: lastActive, endedAt: now, count: 0 });
        await this.flushRecords();
      }
    } catch (err) {
      // The first run reads the store again; nothing here is needed for correctness.
      this.log.warn({ err }, 'could not restore the sync status from the store');
    }
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.abort = new AbortController();
    // The first run waits for the first answer about the lease: a sole replica syncs at once.
    this.leaseStarted = this.lease.start();
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.wake?.();
    await this.loopDone;
    await this.lease.stop();
    this.update({ lease: this.lease.status() });
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  /**
   * Runs a sync now, or joins the one under way, and resolves when a run that started
   * after this call has finished. It does not wait out a backoff, an open circuit or the
   * wait after a permanent error: asking is a reason to try.
   */
  syncNow(): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      if (!this.running) this.wake?.();
    });
  }

  /**
   * The read path's check: a reader about to answer from the store asks whether the store
   * still holds the generation this engine synced. When it does not (flushed, restarted
   * without persistence), the dataset is marked as resyncing at once, so the answer says
   * its totals are incomplete, and the resync starts now instead of at the next run.
   */
  async checkStore(): Promise<void> {
    if (!this.lease.held) return this.mirror();
    const known = this.generation;
    if (known === null) return;
    // A store that cannot answer cannot tell: the sync loop reports its trouble, and answers that need it fail.
    const held = await this.store.readGeneration(this.spec.name).catch(() => undefined);
    if (held !== undefined && held !== known && this.generation === known) this.noteLoss();
  }

  /**
   * A replica without the lease: the holder's status, as the holder saved it in the store, so
   * that its answers report the same freshness as the holder's. Read at most once a second
   * unless `force`d.
   */
  private async mirror(force = false): Promise<void> {
    const now = this.now();
    if (!force && now - this.lastMirrorAt < MIRROR_EVERY_MS) return;
    this.lastMirrorAt = now;
    try {
      const { name } = this.spec;
      const [state, saved] = await Promise.all([this.store.readState(name), this.store.readStatus(name)]);
      // No saved status (the store lost it too): keep what this replica knew.
      const mirrored = restoredStatus(this.current, state, saved ?? { ...this.current }, now);
      this.generation = mirrored.generation;
      this.update({ ...mirrored, lease: this.lease.status() });
    } catch (err) {
      // Answers that need the store report its trouble themselves.
      this.log.debug({ err }, 'could not read the holder’s status from the store');
    }
  }

  /** Not holding the lease: mirror the holder until the keeper wins the lease (which wakes the loop). */
  private async follow(): Promise<number> {
    await this.mirror(true);
    return this.spec.sync.intervalMs;
  }

  /** This replica was granted the lease: after another holder, its next run first takes up what that one left. */
  private tookLease(previous: string | null): void {
    if (previous !== null && previous !== this.lease.status().self) this.takeUp = true;
    this.wake?.();
  }

  /** Whether operators' controls differ from what the engine obeys (read at most once a second). */
  private async controlChanged(): Promise<boolean> {
    const now = this.now();
    if (now - this.lastControlAt < CONTROL_EVERY_MS) return false;
    this.lastControlAt = now;
    const control = await this.store.readControl(this.spec.name).catch(() => null);
    return (
      control !== null &&
      (control.resync !== null || (control.paused === null) !== (this.current.paused === null))
    );
  }

  /**
   * Obeys operators' controls before a run (http/routes/ops.ts writes them, on any replica): a
   * pause skips runs until resumed; a resync request drops the data and reads everything
   * again. Each is recorded as an annotation. True when the run is to be skipped.
   */
  private async obeyControls(): Promise<boolean> {
    const { name } = this.spec;
    const control = await this.store.readControl(name);
    this.lastControlAt = this.now();
    const was = this.current.paused;
    if (control.paused && !was) {
      this.log.info({ by: control.paused.by }, 'sync paused by an operator');
      this.unrecordedRegions.push(operation('pause', control.paused));
      this.update({ paused: control.paused, state: 'paused' });
      await this.flushRecords();
    } else if (!control.paused && was) {
      const resumed = control.resumed ?? { at: this.now(), by: 'unknown' };
      this.log.info({ by: resumed.by }, 'sync resumed by an operator');
      this.unrecordedRegions.push(
        { kind: 'pause', startedAt: was.at, endedAt: resumed.at, count: 0, operation: 'pause', by: was.by },
        operation('resume', resumed),
      );
      this.update({ paused: null, state: 'idle' });
    }
    if (control.paused) return true;
    if (control.resync) {
      this.log.warn({ by: control.resync.by }, 'resync from scratch asked for by an operator');
      await this.store.clearResyncRequest(name);
      this.unrecordedRegions.push(operation('resync', control.resync));
      this.update({ resyncSince: this.now(), resyncReason: 'operator', backfill: backfillOf(0, null) });
      await this.begin(true);
    }
    return false;
  }

  /** A push source has changes: read them now, unless a failure's wait is under way. */
  private changesArrived(): void {
    if (this.stopped) return;
    if (this.running) this.again = true;
    else if (this.current.state !== 'backoff' && this.current.state !== 'failing') this.wake?.();
  }

  private noteLoss(why = 'the store lost this dataset'): void {
    if (this.current.resyncSince !== null) return;
    this.log.warn(`${why}; reading it again from the start`);
    const { state } = this.current;
    this.update({
      resyncReason: 'store-loss',
      resyncSince: this.now(),
      state: state === 'backoff' || state === 'failing' ? state : 'resyncing',
      backfill: backfillOf(0, null),
    });
    if (!this.running) this.wake?.();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const waiting = this.waiters.splice(0);
      await this.leaseStarted;
      if (this.abort.signal.aborted) this.abort = new AbortController();
      const following = !this.lease.held;
      this.running = following ? this.follow() : this.attempt();
      const delay = await this.running;
      this.running = null;
      for (const resolve of waiting) resolve();
      if (this.stopped) break;
      const again = this.again && this.current.state === 'idle';
      this.again = false;
      if (this.waiters.length > 0 || again) continue;
      // Granted the lease while following: sync now (the grant's wake found no wait to end).
      if (following && this.lease.held) continue;
      this.update({ nextAttemptAt: this.now() + delay });
      this.emit('scheduled', { delayMs: delay, state: this.current.state });
      await new Promise<void>((resolve) => {
        const cancel = this.setTimer(resolve, delay);
        this.wake = () => {
          cancel();
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** One run, recorded; resolves with the wait before the next one. */
  private async attempt(retried = false): Promise<number> {
    const totals = { upserts: 0, deletes: 0 };
    let startedAt = this.now();
    try {
      if (this.takeUp) {
        this.takeUp = false;
        await this.mirror(true);
      }
      if (await this.obeyControls()) return this.spec.sync.intervalMs;
      startedAt = this.now();
      this.update({ lastAttemptAt: startedAt, nextAttemptAt: null });
      await this.run(totals);
      this.retry.succeeded();
      const endedAt = this.now();
      const { failingSince, consecutiveFailures, lastError } = this.current;
      if (failingSince !== null) {
        this.unrecordedRegions.push({
          kind: 'failure',
          startedAt: failingSince,
          endedAt,
          count: consecutiveFailures,
          ...(lastError
            ? { error: { message: lastError.message, class: lastError.class, origin: lastError.origin } }
            : {}),
        });
      }
      this.update({
        state: 'idle',
        lastSuccessAt: endedAt,
        lastRunDurationMs: endedAt - startedAt,
        consecutiveFailures: 0,
        failingSince: null,
        backfill: null,
      });
      await this.record({
        startedAt,
        endedAt,
        outcome: 'success',
        records: totals.upserts + totals.deletes,
        ...this.runBy(),
      });
      this.emit('run', {
        dataset: this.spec.name,
        outcome: 'success',
        durationMs: endedAt - startedAt,
        ...totals,
      });
      return this.spec.sync.intervalMs;
    } catch (err) {
      if (this.stopped && this.abort.signal.aborted) return 0;
      if (err instanceof LeaseLostError || !this.lease.held) {
        // Not a failure: another replica syncs now, and nothing here may be written any more;
        // unless nobody took the lease (the store lost it too), and this replica has it again.
        const again = err instanceof LeaseLostError && (await this.lease.refused());
        this.update({ lease: this.lease.status() });
        if (!again || retried || this.stopped) return 0;
        this.abort = new AbortController();
        return this.attempt(true);
      }
      const error = classify(err);
      const endedAt = this.now();
      const decision = this.retry.failed(error.class, endedAt);
      this.log.warn({ err, class: error.class, origin: error.origin }, 'sync run failed');
      // Batches this run committed before it failed are held: count them (if the store answers).
      const held = await this.store.readState(this.spec.name).catch(() => null);
      if (held && held.generation === this.generation)
        this.update({ records: held.records, version: held.version });
      this.update({
        state: decision.state,
        consecutiveFailures: this.current.consecutiveFailures + 1,
        failingSince: this.current.failingSince ?? startedAt,
        lastError: { message: error.message, class: error.class, origin: error.origin, at: endedAt },
        lastRunDurationMs: endedAt - startedAt,
      });
      await this.record({
        startedAt,
        endedAt,
        outcome: 'failure',
        records: totals.upserts + totals.deletes,
        error: { message: error.message, class: error.class, origin: error.origin },
        ...this.runBy(),
      });
      this.emit('run', {
        dataset: this.spec.name,
        outcome: 'failure',
        durationMs: endedAt - startedAt,
        ...totals,
        error,
      });
      return decision.delayMs;
    }
  }

  /** One run: every page the upstream has after the committed position. */
  private async run(totals: { upserts: number; deletes: number }): Promise<void> {
    const { name } = this.spec;
    let state: SyncState;
    let caughtUp: boolean;
    for (let conflicts = 0; ; conflicts++) {
      // A batch that a crash (or a failed run) left half applied is completed first, so
      // that the position read next is the committed one.
      await this.store.finishPending(name);
      const held = await this.store.readState(name);
      if (held) {
        state = held;
      } else {
        // No state: a first sync, or (when this engine knew a generation) a store that lost it.
        const lost = this.generation !== null;
        if (lost) this.noteLoss();
        state = await this.begin(lost);
      }
      try {
        caughtUp = await this.readPages(state, totals);
        break;
      } catch (err) {
        if (err instanceof ConflictError && conflicts < CONFLICT_RETRIES) {
          this.log.warn('another write reached the dataset first; reading on from the stored position');
          continue;
        }
        if (!(err instanceof StateLostError || err instanceof ResyncNeededError)) throw err;
        this.noteLoss(err instanceof ResyncNeededError ? err.message : undefined);
        state = await this.begin(true);
        caughtUp = await this.readPages(state, totals);
        break;
      }
    }
    if (caughtUp && this.current.resyncSince !== null) await this.finishResync(state.generation);
    await this.trimIfDue();
    if (caughtUp && !this.stopped) await this.reconcile(state.generation);
  }

  /** This run's share of the search for records deleted upstream (sync/reconcile.ts), recorded. */
  private async reconcile(generation: string): Promise<void> {
    const status = this.current.reconcile;
    if (!this.reconciler || !status) return;
    const { status: after, report } = await this.reconciler.run(
      status,
      generation,
      this.abort.signal,
      (s, result) => {
        this.update({
          reconcile: s,
          version: result.version,
          records: this.current.records - result.deletes,
        });
        this.changed(result);
      },
    );
    this.update({ reconcile: after });
    if (!report) return;
    const pass = report.completed;
    if (pass && pass.tombstoned > 0) {
      this.unrecordedRegions.push({
        kind: 'reconcile',
        startedAt: pass.startedAt,
        endedAt: pass.endedAt,
        count: pass.tombstoned,
        checked: pass.checked,
      });
    }
    this.emit('reconcile', { dataset: this.spec.name, ...report });
  }

  /** Starts a fresh copy: an empty generation in the store (marked when it is a resync) and a backfill from the start. */
  private async begin(resync: boolean): Promise<SyncState> {
    const since = resync ? (this.current.resyncSince ?? this.now()) : null;
    const reason = this.current.resyncReason === 'operator' ? ({ reason: 'operator' } as const) : {};
    const mark: ResyncMark | undefined =
      since === null ? undefined : { since, applied: 0, remaining: null, ...reason };
    const state = await this.store.resetDataset(this.spec.name, mark);
    this.generation = state.generation;
    const remaining = await this.estimate(null);
    this.update({
      state: resync ? 'resyncing' : 'syncing',
      generation: state.generation,
      cursor: null,
      version: 0,
      records: 0,
      resyncSince: since,
      backfill: backfillOf(0, remaining),
    });
    return state;
  }

  /** The resync has read everything the upstream had: the totals are whole again. */
  private async finishResync(generation: string): Promise<void> {
    const since = this.current.resyncSince!;
    await this.store.writeResync(this.spec.name, generation, null);
    this.unrecordedRegions.push({
      kind: 'resync',
      startedAt: since,
      endedAt: this.now(),
      count: this.current.backfill?.applied ?? 0,
      ...(this.current.resyncReason === 'operator' ? { operation: 'resync' as const } : {}),
    });
    this.update({ resyncSince: null, resyncReason: null });
  }

  /** Reads and applies pages until the upstream has no more (true) or the engine stops (false). */
  private async readPages(state: SyncState, totals: { upserts: number; deletes: number }): Promise<boolean> {
    const { name, sync } = this.spec;
    this.generation = state.generation;
    if (state.resync && this.current.resyncSince === null) this.update({ resyncSince: state.resync.since });
    let committed: Position | null = state.position;
    let after = committed;
    let rewindMs = committed && sync.lookbackMs > 0 ? sync.lookbackMs : undefined;
    let caughtUp = false;
    const running: SyncStateName = this.current.resyncSince !== null ? 'resyncing' : 'syncing';
    if (this.current.state !== running) this.update({ state: running });
    for (;;) {
      const batchStart = this.now();
      const page = await this.source.fetch({
        after,
        rewindMs,
        limit: sync.batchSize,
        signal: this.abort.signal,
      });
      rewindMs = undefined;
      // Stop writing at once when the lease is gone (the store would refuse the write anyway).
      if (!this.lease.held) throw new LeaseLostError(name);
      // A re-read of the lookback window never moves the committed position backwards.
      const advance =
        page.last && (!committed || this.source.compare(page.last, committed) > 0) ? page.last : null;
      const result = await this.store.applyBatch(name, {
        generation: state.generation,
        records: page.records,
        position: advance,
        cutoffMs: this.now() - this.spec.retentionMs,
      });
      if (!result.applied)
        throw result.reason === 'conflict'
          ? new ConflictError('another write reached the dataset first, again and again')
          : new StateLostError();
      if (advance) {
        committed = advance;
        this.source.committed?.(advance);
      }
      after = page.last ?? after;
      totals.upserts += result.upserts;
      totals.deletes += result.deletes;
      const backfill = this.current.backfill;
      this.update({
        cursor: committed,
        version: result.version,
        recordsApplied: this.current.recordsApplied + result.upserts + result.deletes,
        lastBatchDurationMs: this.now() - batchStart,
        backfill:
          backfill && (await this.progress(state.generation, backfill.applied + page.records.length, after)),
      });
      this.changed(result);
      caughtUp = page.done || page.records.length === 0;
      if (caughtUp || this.stopped || (await this.controlChanged())) break;
    }
    const held = await this.store.readState(name);
    if (held) this.update({ records: held.records, version: held.version });
    return caughtUp;
  }

  /** Tells the change bus what a committed batch touched. */
  private changed(result: ApplyResult & { applied: true }): void {
    if (result.touchedFrom === null || result.touchedTo === null) return;
    this.emit('change', {
      dataset: this.spec.name,
      version: result.version,
      from: result.touchedFrom,
      to: result.touchedTo + this.spec.resolutionMs,
      upserts: result.upserts,
      deletes: result.deletes,
      at: this.now(),
    });
  }

  /**
   * Backfill progress; the upstream is asked for an estimate at most once per
   * PROGRESS_EVERY_MS, and a resync's progress is saved with it so a restart can report it.
   */
  private async progress(
    generation: string,
    applied: number,
    after: Position | null,
  ): Promise<DatasetStatus['backfill']> {
    const before = this.current.backfill;
    let remaining = before?.remaining ?? null;
    if (this.now() - this.lastEstimateAt >= PROGRESS_EVERY_MS) {
      this.lastEstimateAt = this.now();
      remaining = await this.estimate(after);
      const since = this.current.resyncSince;
      const reason = this.current.resyncReason === 'operator' ? ({ reason: 'operator' } as const) : {};
      if (since !== null)
        await this.store.writeResync(this.spec.name, generation, { since, applied, remaining, ...reason });
    } else if (remaining !== null && before) {
      remaining = Math.max(0, remaining - (applied - before.applied));
    }
    return backfillOf(applied, remaining);
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
    if (now - this.lastTrimAt < this.trimEveryMs) return;
    this.lastTrimAt = now;
    const removed = await this.store.trim(this.spec.name, now - this.spec.retentionMs);
    if (removed > 0) this.log.info({ removed }, 'trimmed records past retention');
  }

  /**
   * Stores the run's event, the regions that ended and the status. A run that failed because
   * the store was away could not be recorded then: they wait here (a bounded number of
   * events; every region) and go in order once it answers.
   */
  private async record(event: SyncEvent): Promise<void> {
    this.unrecorded.push(event);
    if (this.unrecorded.length > UNRECORDED_KEPT) this.unrecorded.shift();
    await this.flushRecords();
  }

  private async flushRecords(): Promise<void> {
    const { name } = this.spec;
    try {
      while (this.unrecordedRegions.length > 0) {
        await this.store.appendRegion(name, this.unrecordedRegions[0]!);
        this.unrecordedRegions.shift();
      }
      while (this.unrecorded.length > 0) {
        await this.store.appendEvent(name, this.unrecorded[0]!);
        this.unrecorded.shift();
      }
      await this.store.writeStatus(name, { ...this.current });
    } catch (err) {
      this.log.debug(
        { err, pending: this.unrecorded.length + this.unrecordedRegions.length },
        'could not record the sync event yet',
      );
    }
  }

  /** Who ran a sync: this replica and its lease's token, recorded with the run's event. */
  private runBy(): Pick<SyncEvent, 'holder' | 'token'> {
    const lease = this.lease.status();
    return { holder: lease.self, ...(lease.token === null ? {} : { token: lease.token }) };
  }

  private update(patch: Partial<DatasetStatus>): void {
    this.current = { ...this.current, ...patch };
    // Copying the status for nobody would cost on every batch.
    if (this.listenerCount('status') > 0) this.emit('status', this.status());
  }
}

/** An operator's action as a point annotation. */
function operation(kind: Operation, by: { at: number; by: string }): SyncRegion {
  return { kind: 'operation', startedAt: by.at, endedAt: by.at, count: 0, operation: kind, by: by.by };
}
