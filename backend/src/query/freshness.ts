import { describeAge } from '../config/duration';
import type { DatasetSpec } from '../config/dataset';
import type { DatasetStatus } from '../sync/status';
import type { Notice } from './frames';

export interface Freshness {
  dataset: string;
  lastSyncAt: number | null;
  ageSeconds: number | null;
  state: DatasetStatus['state'];
  stale: boolean;
  /**
   * The store lost the dataset and the resync has not caught up: totals are partial. Set
   * from the loss until the resync ends, whatever the runs in between do.
   */
  incomplete: boolean;
  records: number;
  /** The dataset's data version. */
  version: number;
  /** A warning for the panel header when the data should not be trusted as current. */
  notice: Notice | null;
}

/**
 * How fresh a dataset is, in numbers for thresholds and in words for people. A dataset
 * that never synced is stale: nothing says its numbers are current.
 */
export function freshnessOf(spec: DatasetSpec, status: DatasetStatus, now: number): Freshness {
  const ageMs = status.lastSuccessAt === null ? null : Math.max(0, now - status.lastSuccessAt);
  const stale = ageMs === null || ageMs > spec.staleAfterMs;
  const threshold = describeAge(spec.staleAfterMs);
  const problems: string[] = [];
  const incomplete = status.resyncSince !== null;
  if (incomplete) {
    const progress = status.backfill?.progress;
    const why = status.resyncReason === 'operator' ? 'as an operator asked' : 'after the store lost its data';
    problems.push(
      `resyncing from the start ${why}${progress == null ? '' : ` (${Math.floor(progress * 100)} % done)`}; totals are incomplete until it catches up`,
    );
  }
  if (status.paused) problems.push(`sync paused by ${status.paused.by}`);
  if (ageMs === null) problems.push(`not synced yet; threshold ${threshold}`);
  else if (stale) problems.push(`last synced ${describeAge(ageMs)} ago; threshold ${threshold}`);
  if (status.lastError && (status.state === 'failing' || status.state === 'backoff' || stale)) {
    // Source errors already name their dataset; the notice starts with it once.
    const message = status.lastError.message.startsWith(`${spec.name}: `)
      ? status.lastError.message.slice(spec.name.length + 2)
      : status.lastError.message;
    problems.push(`last error: ${message}`);
  }
  const failing = status.state === 'failing';
  return {
    dataset: spec.name,
    lastSyncAt: status.lastSuccessAt,
    ageSeconds: ageMs === null ? null : Math.round(ageMs / 100) / 10,
    state: status.state,
    stale,
    incomplete,
    records: status.records,
    version: status.version,
    notice:
      stale || failing || incomplete || status.paused !== null
        ? { severity: 'warning', text: `${spec.name}: ${problems.join('; ') || 'sync is failing'}` }
        : null,
  };
}
