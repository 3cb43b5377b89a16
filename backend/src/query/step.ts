import type { DatasetSpec } from '../config/dataset';

export interface Plan {
  stepMs: number;
  /** The stored tier read: the coarsest that divides the step. */
  tierMs: number;
  /** First bucket start (aligned to the step), inclusive. */
  from: number;
  /** End of the last bucket, exclusive: every bucket starting before `to` is returned whole. */
  to: number;
}

/**
 * The step is the smallest multiple of the dataset's resolution that is at least Grafana's
 * interval and at least range / maxDataPoints; buckets start at multiples of it since the
 * Unix epoch, as `date_bin(step, ts, 'epoch')` does.
 */
export function planBuckets(
  spec: DatasetSpec,
  from: number,
  to: number,
  intervalMs: number,
  maxDataPoints: number,
): Plan {
  const res = spec.resolutionMs;
  const wanted = Math.max(intervalMs, (to - from) / maxDataPoints, res);
  const stepMs = Math.ceil(wanted / res) * res;
  const tierMs = [...spec.layout.tiers].reverse().find((t) => stepMs % t === 0) ?? res;
  return {
    stepMs,
    tierMs,
    from: Math.floor(from / stepMs) * stepMs,
    to: Math.ceil(to / stepMs) * stepMs,
  };
}
