/**
 * Reconciliation: finds records that are gone upstream (a plain `DELETE`, which a cursor never
 * sees) and applies them as tombstones through the store's normal apply path.
 *
 * A pass walks the ids the store holds (Store.scanRecords, a bounded step at a time, resumed
 * where it stopped) and asks the upstream which of each page's ids still exist
 * (Source.existing: one key lookup per page in PostgreSQL, ids by query parameter over HTTP).
 * An id the store held and the upstream no longer has is deleted, with a position of null, so
 * the committed cursor stays where it is.
 *
 * Why a live record is never removed: the pass runs inside the dataset's sync loop, between
 * runs, so nothing writes the store between reading a page of held ids and applying its
 * tombstones. Every id of the page was therefore read from the upstream by a sync before the
 * page was listed, and the upstream is asked after that: an id it no longer holds was deleted
 * in between. A record inserted meanwhile is not in the page; one updated meanwhile still
 * exists. One deleted and inserted again under the same id comes back with a newer cursor,
 * which the next sync reads. Checking an id twice (a scan may repeat ids) changes nothing.
 */
import type { Logger } from 'pino';
import type { DatasetSpec } from '../config/dataset';
import type { Source, SourceRecord } from '../sources/types';
import type { ApplyResult, Store } from '../store/types';
import { classify, type ClassifiedError } from './errors';

/** A completed pass, as the status, the annotations and the metrics report it. */
export interface PassSummary {
  startedAt: number;
  endedAt: number;
  durationMs: number;
  /** Ids checked against the upstream (an id the scan returned twice counts twice). */
  checked: number;
  /** Records found gone upstream and removed. */
  tombstoned: number;
}

/** The reconciliation part of a dataset's status; saved with it, so a pass resumes after a restart. */
export interface ReconcileStatus {
  /** The pass under way: where the store scan stands (a Store.scanRecords cursor) and its findings so far. */
  pass: { generation: string; startedAt: number; cursor: string; checked: number; tombstoned: number } | null;
  lastPass: PassSummary | null;
  /** When the next pass starts (null: at the next run that has caught up, or one is under way). */
  nextPassAt: number | null;
  lastError: { message: string; class: string; origin: string; at: number } | null;
}

/** What one run's share of reconciliation did, for the engine's events and metrics. */
export interface ReconcileReport {
  outcome: 'success' | 'failure';
  checked: number;
  tombstoned: number;
  durationMs: number;
  /** Set when a pass completed in this run. */
  completed: PassSummary | null;
  error?: ClassifiedError;
}

export function initialReconcile(): ReconcileStatus {
  return { pass: null, lastPass: null, nextPassAt: null, lastError: null };
}

/** A saved status as another process wrote it: anything of the wrong shape starts afresh. */
export function restoredReconcile(saved: unknown): ReconcileStatus {
  const s = (typeof saved === 'object' && saved !== null ? saved : {}) as Partial<ReconcileStatus>;
  const pass = s.pass;
  const last = s.lastPass;
  return {
    pass:
      pass &&
      typeof pass.generation === 'string' &&
      typeof pass.cursor === 'string' &&
      Number.isFinite(pass.checked)
        ? pass
        : null,
    lastPass: last && Number.isFinite(last.startedAt) && Number.isFinite(last.endedAt) ? last : null,
    nextPassAt: typeof s.nextPassAt === 'number' ? s.nextPassAt : null,
    lastError: s.lastError && typeof s.lastError.message === 'string' ? s.lastError : null,
  };
}

type Checkable = Source & Required<Pick<Source, 'existing'>>;

export class Reconciler {
  private constructor(
    private readonly spec: DatasetSpec,
    private readonly source: Checkable,
    private readonly store: Store,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  /** The dataset's reconciler, or null when reconciliation is off or its source cannot tell which ids exist. */
  static for(
    spec: DatasetSpec,
    source: Source,
    store: Store,
    log: Logger,
    now: () => number,
  ): Reconciler | null {
    if (spec.sync.reconcile.everyMs === null || !source.existing) return null;
    return new Reconciler(spec, source as Checkable, store, log, now);
  }

  /**
   * Does this run's share of reconciliation: at most `perRun` ids of the pass under way (one
   * is started when due), page by page. `progress` gets the status after every page and the
   * result of every apply that removed something. A failure ends the share and keeps the
   * pass where it was: its page is checked again by the next run (a permanent failure waits
   * `sync.permanentRetry` first).
   */
  async run(
    status: ReconcileStatus,
    generation: string,
    signal: AbortSignal,
    progress: (status: ReconcileStatus, applied: ApplyResult & { applied: true }) => void,
  ): Promise<{ status: ReconcileStatus; report: ReconcileReport | null }> {
    const startedAt = this.now();
    const { everyMs, pageSize, perRun } = this.spec.sync.reconcile;
    let pass = status.pass?.generation === generation ? status.pass : null;
    if (status.nextPassAt !== null && startedAt < status.nextPassAt)
      return { status: { ...status, pass }, report: null };
    pass ??= { generation, startedAt, cursor: '0', checked: 0, tombstoned: 0 };
    let current: ReconcileStatus = { ...status, pass, nextPassAt: null };
    const report: ReconcileReport = {
      outcome: 'success',
      checked: 0,
      tombstoned: 0,
      durationMs: 0,
      completed: null,
    };
    try {
      while (report.checked < perRun) {
        const page = await this.store.scanRecords(
          this.spec.name,
          pass.cursor,
          Math.min(pageSize, perRun - report.checked),
        );
        const ids = page.records.map((record) => record.id);
        const exists = ids.length === 0 ? new Set<string>() : await this.source.existing(ids, signal);
        const gone = ids.filter((id) => !exists.has(id));
        let applied: (ApplyResult & { applied: true }) | null = null;
        if (gone.length > 0) {
          const result = await this.store.applyBatch(this.spec.name, {
            generation,
            records: gone.map(tombstone),
            position: null,
            cutoffMs: this.now() - this.spec.retentionMs,
          });
          // Lost: the next run resyncs, and a new pass starts on the new generation. Conflict:
          // another write got in; this page is checked again next time.
          if (!result.applied) break;
          applied = result;
          if (result.deletes > 0)
            this.log.info(
              { tombstoned: result.deletes, checked: ids.length },
              'removed records deleted upstream',
            );
        }
        const tombstoned = applied?.deletes ?? 0;
        current = this.advance(current, pass, page.cursor, ids.length, tombstoned);
        if (applied) progress(current, applied);
        pass = current.pass!;
        report.checked += ids.length;
        report.tombstoned += tombstoned;
        if (page.cursor === '0') {
          const endedAt = this.now();
          const completed: PassSummary = {
            startedAt: pass.startedAt,
            endedAt,
            durationMs: endedAt - pass.startedAt,
            checked: pass.checked,
            tombstoned: pass.tombstoned,
          };
          report.completed = completed;
          current = {
            pass: null,
            lastPass: completed,
            nextPassAt: pass.startedAt + everyMs!,
            lastError: null,
          };
          break;
        }
        if (signal.aborted) break;
      }
    } catch (err) {
      if (signal.aborted) return { status: current, report: null };
      const error = classify(err);
      this.log.warn(
        { err, class: error.class, origin: error.origin },
        'reconciliation failed; it goes on later',
      );
      report.outcome = 'failure';
      report.error = error;
      const at = this.now();
      current = {
        ...current,
        lastError: { message: error.message, class: error.class, origin: error.origin, at },
        nextPassAt: error.class === 'permanent' ? at + this.spec.sync.permanentRetryMs : null,
      };
    }
    report.durationMs = this.now() - startedAt;
    return { status: current, report };
  }

  private advance(
    status: ReconcileStatus,
    pass: NonNullable<ReconcileStatus['pass']>,
    cursor: string,
    checked: number,
    tombstoned: number,
  ): ReconcileStatus {
    return {
      ...status,
      pass: { ...pass, cursor, checked: pass.checked + checked, tombstoned: pass.tombstoned + tombstoned },
    };
  }
}

/** A record's deletion: only `id` and `deleted` matter to the rules. */
function tombstone(id: string): SourceRecord {
  return { id, time: 0, cursor: '', deleted: true, dims: [], metrics: [], distinct: [] };
}
