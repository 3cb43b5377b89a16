import type { ErrorOrigin, Position } from '../sources/types';
import type { ReconcileStatus } from './reconcile';

export type SyncStateName = 'idle' | 'syncing' | 'backoff' | 'failing' | 'resyncing';

export interface DatasetStatus {
  dataset: string;
  /** What the sync loop is doing: a failed run makes it `backoff` or `failing`, whatever else is true. */
  state: SyncStateName;
  lastAttemptAt: number | null;
  lastSuccessAt: number | null;
  lastError: { message: string; class: string; origin: ErrorOrigin; at: number } | null;
  cursor: Position | null;
  /** Records applied (upserts and deletes) since this process started syncing the dataset. */
  recordsApplied: number;
  lastBatchDurationMs: number | null;
  lastRunDurationMs: number | null;
  consecutiveFailures: number;
  /** When the current run of failures began (null while runs succeed): the start of a failure annotation. */
  failingSince: number | null;
  nextAttemptAt: number | null;
  /** Set while a full read from the start is under way (first sync or after the store lost its state). */
  backfill: { applied: number; remaining: number | null; progress: number | null } | null;
  /**
   * When the store was found to have lost the dataset; null once the resync that followed has
   * caught up. Kept across failed runs and restarts (the store holds it beside the data), and
   * every answer over the dataset says its totals are incomplete while it is set.
   */
  resyncSince: number | null;
  generation: string | null;
  version: number;
  records: number;
  /** The search for records deleted upstream (sync/reconcile.ts); null when it is off. */
  reconcile: ReconcileStatus | null;
}

export function initialStatus(dataset: string): DatasetStatus {
  return {
    dataset,
    state: 'idle',
    lastAttemptAt: null,
    lastSuccessAt: null,
    lastError: null,
    cursor: null,
    recordsApplied: 0,
    lastBatchDurationMs: null,
    lastRunDurationMs: null,
    consecutiveFailures: 0,
    failingSince: null,
    nextAttemptAt: null,
    backfill: null,
    resyncSince: null,
    generation: null,
    version: 0,
    records: 0,
    reconcile: null,
  };
}

/** A full read's progress: what is applied against what the upstream says is left (null: no estimate). */
export function backfillOf(
  applied: number,
  remaining: number | null,
): NonNullable<DatasetStatus['backfill']> {
  return {
    applied,
    remaining,
    progress: remaining === null ? null : Math.min(1, applied / Math.max(1, applied + remaining)),
  };
}
