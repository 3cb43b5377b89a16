import { LIMIT_DEFAULTS, type Limits } from '../config/schema';
import { QueryError } from './errors';

/**
 * What one `/api/query` request may cost, summed over all its metrics queries, checked after
 * the groups are listed and before any rollup is read (or any cached answer is served).
 *
 * - **Stored cells read**: candidate groups × tier buckets of the range, the size of the
 *   rollup read (each cell is `1 + 4 × metrics` doubles) and of the fold over it.
 * - **Points returned**: the values the frames carry, every output row (series × steps)
 *   times the fields of a row (`time` plus one per aggregation; a table adds the group
 *   columns). Empty buckets are left out of frames, so this is an upper bound that is known
 *   before reading anything.
 *
 * Cache hits are counted like misses. A hit reads no cells, but its body is as big as the
 * computed one and the body is what costs memory; and a request must not be answered while
 * its answer happens to be cached and refused once the entry expires, so the verdict
 * depends on the request and the stored groups only, never on the cache.
 *
 * Defaults (config/schema.ts, `server.limits`), for a dataset with up to 4 metrics:
 * - 4,000,000 cells: by 20 countries, 24h @ 1m reads 28,800 cells, 7d @ 10m 201,600 (10m
 *   steps read the 1m tier), 30d @ 1h 14,400: a panel of ten such queries is far below. 32
 *   queries grouped by four dimensions (320 groups) over 12h @ 1m need 7,372,800 and are
 *   refused. Cells are read in pieces (query/engine.ts), so this bounds time, not memory.
 * - 1,000,000 points (8 to 15 MB of JSON): 24h @ 1m by 20 countries with 5 aggregations
 *   returns 20 × 1,441 × 6 = 172,920, 7d @ 10m 121,080, 30d @ 1h 86,520: five such
 *   queries in one panel fit. A chart draws about one point per pixel; a million is more
 *   than a screen of panels shows.
 */

export interface QueryCost {
  /** Stored cells the query reads: candidate groups × tier buckets. */
  cells: number;
  /** Values its frames carry at most: series × steps × fields per row. */
  points: number;
}

export function resolveLimits(limits: Partial<Limits> = {}): Limits {
  const defined = Object.entries(limits).filter(([, v]) => v !== undefined);
  return { ...LIMIT_DEFAULTS, ...(Object.fromEntries(defined) as Partial<Limits>) };
}

/** The one rule for what a metrics query costs. */
export function queryCost(shape: {
  /** Groups of the projection the query reads (after its filters). */
  groups: number;
  /** Output series: distinct group-by values among those groups. */
  series: number;
  /** Stored buckets of the tier read over the range. */
  tierBuckets: number;
  /** Output steps over the range. */
  steps: number;
  /** Values per output row. */
  fieldsPerRow: number;
}): QueryCost {
  return {
    cells: shape.groups * shape.tierBuckets,
    points: shape.series * shape.steps * shape.fieldsPerRow,
  };
}

const n = (v: number) => v.toLocaleString('en-US');
const queries = (count: number) => `${count} ${count === 1 ? 'query' : 'queries'}`;

/**
 * Refuses a request whose queries together cost more than the limits, naming the limit and
 * the numbers.
 *
 * The status is 400, not 413: 413 (Content Too Large) is about the request's own content,
 * which is a few hundred bytes here; the request is well-formed but asks for more than the
 * service answers, like the other range problems this API reports as 400, and sending it
 * again unchanged never helps (unlike 429 or 503), so the client has to narrow it. Grafana
 * shows a 400's message on the panel.
 */
export function checkBudget(costs: QueryCost[], limits: Limits): void {
  const cells = costs.reduce((sum, c) => sum + c.cells, 0);
  const points = costs.reduce((sum, c) => sum + c.points, 0);
  const problems: string[] = [];
  if (cells > limits.maxCellsPerRequest) {
    problems.push(
      `the request needs ${n(cells)} stored cells across ${queries(costs.length)}; the limit is ${n(limits.maxCellsPerRequest)} (server.limits.maxCellsPerRequest): narrow the range, the groups or the number of queries`,
    );
  }
  if (points > limits.maxPointsPerRequest) {
    problems.push(
      `the request would return up to ${n(points)} points across ${queries(costs.length)}; the limit is ${n(limits.maxPointsPerRequest)} (server.limits.maxPointsPerRequest): narrow the range, raise the interval, group by fewer dimensions or send fewer queries`,
    );
  }
  if (problems.length > 0) throw new QueryError(problems.join('; '));
}
