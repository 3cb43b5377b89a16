import { parseDuration } from './duration';
import { resolveReconcile, type ReconcileSpec } from './reconcile';
import { DISTINCT_FROM_DEFAULT, PERMANENT_RETRY_DEFAULT, type RawDataset, type SourceConfig } from './schema';

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
 * whole multiples of it) holds one cell per bucket for every projection kept: a subset of
 * the dimensions, as a bitmask over `dimensions`. Kept are none, each dimension alone, all
 * of them together, and the combinations a dataset names (`projections`): with up to two
 * dimensions that is every subset; with more, a query grouped or filtered by a combination
 * not kept folds the groups of the smallest kept one that holds it (all together at worst),
 * where keeping every subset of four dimensions would cost several times the memory.
 *
 * A cell is `fieldCount` doubles: [count, then per metric: sum, non-null count, min, max].
 */
export interface RollupLayout {
  tiers: number[];
  projections: number[];
  fieldCount: number;
  /** Buckets per stored block: cells of one tier/projection/group are kept in blocks of this many. */
  blockBuckets: number;
  /**
   * Index of the finest tier that keeps distinct counts (`distinctFrom`): it and every coarser
   * tier do; a query that counts distinct values steps by that tier or a multiple of it.
   */
  distinctTier: number;
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

/**
 * `distinctFromMs`: distinct counts are kept at every tier at least this coarse, or at the
 * coarsest tier when none is.
 */
export function layoutFor(
  dimensions: number,
  metrics: number,
  resolutionMs: number,
  distinctFromMs = resolutionMs,
  extraProjections: readonly number[] = [],
): RollupLayout {
  const all = (1 << dimensions) - 1;
  const kept = new Set([0, all, ...extraProjections]);
  for (let i = 0; i < dimensions; i++) kept.add(1 << i);
  const projections = [...kept].sort((a, b) => a - b);
  const tiers = tiersFor(resolutionMs);
  const distinctTier = tiers.findIndex((t) => t >= distinctFromMs);
  return {
    tiers,
    projections,
    fieldCount: 1 + 4 * metrics,
    blockBuckets: BLOCK_BUCKETS,
    distinctTier: distinctTier < 0 ? tiers.length - 1 : distinctTier,
  };
}

/**
 * The kept projection a query reads for these dimensions (a bitmask): the one that holds
 * exactly them when kept, else the kept one with the fewest dimensions that holds them all,
 * whose groups the query folds.
 */
export function keptProjection(layout: RollupLayout, wanted: number): number {
  let best = -1;
  for (const mask of layout.projections) {
    if ((mask & wanted) !== wanted) continue;
    if (best < 0 || popcount(mask) < popcount(best)) best = mask;
  }
  // All dimensions together are always kept, so some projection holds any combination.
  return best;
}

function popcount(mask: number): number {
  let n = 0;
  for (let m = mask; m > 0; m >>= 1) n += m & 1;
  return n;
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
      reconcile: resolveReconcile(raw.sync.reconcile, raw.source),
    },
    staleAfterMs: parseDuration(raw.staleAfter),
    retentionMs: parseDuration(raw.retention),
    layout: layoutFor(
      raw.dimensions.length,
      raw.metrics.length,
      resolutionMs,
      parseDuration(raw.distinctFrom ?? DISTINCT_FROM_DEFAULT),
      (raw.projections ?? []).map((combination, i) => {
        const unknown = combination.filter((d) => !raw.dimensions.includes(d));
        if (unknown.length > 0)
          throw new Error(
            `datasets.${raw.name}.projections[${i}]: ${unknown.join(', ')} ${unknown.length > 1 ? 'are not dimensions' : 'is not a dimension'} of the dataset (${raw.dimensions.join(', ') || 'it has none'})`,
          );
        return projectionOf(raw.dimensions, combination);
      }),
    ),
  };
}
