import type { SyncState } from '../store/types';
import { restoredReconcile } from './reconcile';
import { backfillOf, type DatasetStatus, type SyncStateName } from './status';

const STATES: SyncStateName[] = ['idle', 'syncing', 'backoff', 'failing', 'resyncing'];

const numberOr = (value: unknown, fallback: number | null): number | null =>
  typeof value === 'number' && Number.isFinite(value) ? value : fallback;

/**
 * The status a restarted engine starts from: the data facts from the store's state (records,
 * version, position, generation, a resync under way), the history from the status the last
 * process saved (last success and attempt, the error and the failures under way). The saved
 * status is JSON another version may have written: anything of the wrong type is left out.
 * A saved generation the store no longer holds means the store lost the dataset while the
 * service was away: the restored status says so, and the first run resyncs.
 */
export function restoredStatus(
  current: DatasetStatus,
  state: SyncState | null,
  saved: Record<string, unknown> | null,
  now: number,
): DatasetStatus {
  const s = saved ?? {};
  const lastError = s['lastError'] as DatasetStatus['lastError'] | undefined;
  const failingSince = numberOr(s['failingSince'], null);
  const savedState = STATES.includes(s['state'] as SyncStateName) ? (s['state'] as SyncStateName) : 'idle';
  const savedGeneration = typeof s['generation'] === 'string' ? s['generation'] : null;
  const history: Partial<DatasetStatus> = {
    lastSuccessAt: numberOr(s['lastSuccessAt'], null),
    lastAttemptAt: numberOr(s['lastAttemptAt'], null),
    lastRunDurationMs: numberOr(s['lastRunDurationMs'], null),
    lastError:
      lastError && typeof lastError === 'object' && typeof lastError.message === 'string' ? lastError : null,
    failingSince,
    consecutiveFailures: failingSince === null ? 0 : (numberOr(s['consecutiveFailures'], 0) ?? 0),
    // A pass under way resumes where it stopped (if the store still holds its generation).
    reconcile: current.reconcile && restoredReconcile(s['reconcile']),
  };
  if (state) {
    const resync = state.resync;
    return {
      ...current,
      ...history,
      state: resync
        ? 'resyncing'
        : savedState === 'backoff' || savedState === 'failing'
          ? savedState
          : 'idle',
      generation: state.generation,
      cursor: state.position,
      version: state.version,
      records: state.records,
      resyncSince: resync?.since ?? null,
      backfill: resync ? backfillOf(resync.applied, resync.remaining) : null,
    };
  }
  if (savedGeneration !== null) {
    return {
      ...current,
      ...history,
      state: 'resyncing',
      generation: savedGeneration,
      resyncSince: now,
      backfill: backfillOf(0, null),
    };
  }
  return { ...current, ...history };
}
