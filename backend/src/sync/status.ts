import type { ErrorOrigin, Position } from '../sources/types';

export type SyncStateName = 'idle' | 'syncing' | 'backoff' | 'failing' | 'resyncing';

export interface DatasetStatus {
  dataset: string;
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
  nextAttemptAt: number | null;
  /** Set while a full read from the start is under way (first sync or after the store lost its state). */
  backfill: { applied: number; remaining: number | null; progress: number | null } | null;
  generation: string | null;
  version: number;
  records: number;
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
    nextAttemptAt: null,
    backfill: null,
    generation: null,
    version: 0,
    records: 0,
  };
}
