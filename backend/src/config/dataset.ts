import { parseDuration } from './duration';
import { resolveReconcile, type ReconcileSpec } from './reconcile';
import { PERMANENT_RETRY_DEFAULT, type RawDataset, type SourceConfig } from './schema';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/**
 * A dataset as the rest of the service sees it: durations in milliseconds and the
 * rollup layout derived once from the config.
 */
export interface DatasetSpec {
  name: string;
  source: SourceConfig;
  dimensions: string[];
  metrics: string[];
  distinct: string[];
  resolutionMs: number;
  sync: {
    intervalMs: number;
    batchSize: number;
    lagMs: number;
    lookbackMs: number;
    /** Wait after a permanent error before the next run ("sync now" runs at once). */
    permanentRetryMs: number;
    /** The pass that finds records deleted upstream (sync/reconcile.ts). */
    reconcile: ReconcileSpec;
  };
  staleAfterMs: number;
  retentionMs: number;
  layout: RollupLayout;
}

/**
 * How rollups are kept. Every tier (the base resolution, then 1h and 1d when they are
 * whole multiples of it) holds one cell per bucket for every projection: a subset of the
 * dimensions, as a bitmask over `dimensions`. Keeping all subsets lets any group-by plus
 * filter combination read exactly the cells it needs instead of summing finer groups.
 *
 * A cell is `fieldCount` doubles: [count, then per metric: sum, non-null count, min, max].
 */
export interface RollupLayout {
  tiers: number[];
  projections: number[];
  fieldCount: number;
  /** Buckets per stored block: cells of one tier/projection/group are kept in blocks of this many. */
  blockBuckets: number;
}

export const BLOCK_BUCKETS = 60;

export const CELL = {
  count: 0,
  sum: (m: number) => 1 + 4 * m,
  nonNull: (m: number) => 2 + 4 * m,
  min: (m: number) => 3 + 4 * m,
  max: (m: number) => 4 + 4 * m,
} as const;

export function tiersFor(resolutionMs: number): number[] {
  const tiers = [resolutionMs];
  for (const coarse of [HOUR_MS, DAY_MS]) {
    if (coarse > resolutionMs && coarse % resolutionMs === 0) tiers.push(coarse);
  }
  return tiers;
}

export function layoutFor(dimensions: number, metrics: number, resolutionMs: number): RollupLayout {
  const projections = Array.from({ length: 1 << dimensions }, (_, mask) => mask);
  return {
    tiers: tiersFor(resolutionMs),
    projections,
    fieldCount: 1 + 4 * metrics,
    blockBuckets: BLOCK_BUCKETS,
  };
}

/** The projection (bitmask) that holds exactly these dimensions. */
export function projectionOf(dimensions: readonly string[], wanted: Iterable<string>): number {
  let mask = 0;
  for (const name of wanted) {
    const index = dimensions.indexOf(name);
    if (index < 0) throw new Error(`unknown dimension "${name}"`);
    mask |= 1 << index;
  }
  return mask;
}

/** Indices of the dimensions in a projection, in declaration order. */
export function projectionDimensions(mask: number, dimensionCount: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < dimensionCount; i++) if (mask & (1 << i)) out.push(i);
  return out;
}

export function resolveDataset(raw: RawDataset): DatasetSpec {
  const resolutionMs = parseDuration(raw.resolution);
  if (DAY_MS % resolutionMs !== 0 && resolutionMs % DAY_MS !== 0) {
    throw new Error(
      `datasets.${raw.name}.resolution: ${raw.resolution} must divide a day evenly (e.g. 10s, 1m, 5m, 1h)`,
    );
  }
  const overlap = raw.dimensions.filter((d) => raw.metrics.includes(d) || raw.distinct.includes(d));
  if (overlap.length > 0) {
    throw new Error(
      `datasets.${raw.name}: ${overlap.join(', ')} cannot be both a dimension and a metric/distinct field`,
    );
  }
  return {
    name: raw.name,
    source: raw.source,
    dimensions: raw.dimensions,
    metrics: raw.metrics,
    distinct: raw.distinct,
    resolutionMs,
    sync: {
      intervalMs: parseDuration(raw.sync.interval),
      batchSize: raw.sync.batchSize,
      lagMs: parseDuration(raw.sync.lag),
      lookbackMs: parseDuration(raw.sync.lookback),
      permanentRetryMs: parseDuration(raw.sync.permanentRetry ?? PERMANENT_RETRY_DEFAULT),
      reconcile: resolveReconcile(raw.sync.reconcile, raw.source.kind),
    },
    staleAfterMs: parseDuration(raw.staleAfter),
    retentionMs: parseDuration(raw.retention),
    layout: layoutFor(raw.dimensions.length, raw.metrics.length, resolutionMs),
  };
}
