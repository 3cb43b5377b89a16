import type { DatasetSpec } from '../config/dataset';
import { formatDuration } from '../config/duration';

export interface Plan {
  stepMs: number;
  /** The stored tier read: the coarsest that divides the step. */
  tierMs: number;
  /** First bucket start (aligned to the step), inclusive. */
  from: number;
  /** End of the last bucket, exclusive: every bucket starting before `to` is returned whole. */
  to: number;
  /** Why the step is coarser than asked (distinct counts are not kept that fine), for a notice. */
  coarsened?: string;
}

/**
 * The step is the smallest multiple of the dataset's resolution that is at least Grafana's
 * interval and at least range / maxDataPoints; buckets start at multiples of it since the
 * Unix epoch, as `date_bin(step, ts, 'epoch')` does. A query that counts distinct values
 * steps by a multiple of the finest tier that keeps them (`distinctFrom`), and says so.
 */
export function planBuckets(
  spec: DatasetSpec,
  from: number,
  to: number,
  intervalMs: number,
  maxDataPoints: number,
  options: { distinct?: boolean } = {},
): Plan {
  const res = spec.resolutionMs;
  const wanted = Math.max(intervalMs, (to - from) / maxDataPoints, res);
  const finest = Math.ceil(wanted / res) * res;
  const unit = options.distinct ? spec.layout.tiers[spec.layout.distinctTier]! : res;
  const stepMs = Math.ceil(wanted / unit) * unit;
  const tierMs = [...spec.layout.tiers].reverse().find((t) => stepMs % t === 0) ?? res;
  return {
    stepMs,
    tierMs,
    from: Math.floor(from / stepMs) * stepMs,
    to: Math.ceil(to / stepMs) * stepMs,
    ...(stepMs > finest
      ? {
          coarsened:
            `${spec.name} keeps distinct counts per ${formatDuration(unit)} and coarser (datasets.${spec.name}.distinctFrom): ` +
            `answered per ${formatDuration(stepMs)} instead of ${formatDuration(finest)}`,
        }
      : {}),
  };
}
