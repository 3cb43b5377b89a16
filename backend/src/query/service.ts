import { createHash } from 'node:crypto';
import type { DatasetSpec } from '../config/dataset';
import { formatDuration } from '../config/duration';
import type { DatasetStatus } from '../sync/status';
import type { Store } from '../store/types';
import { countsDistinct, parseAggregation } from './aggregations';
import { ResponseCache, type CacheResult } from './cache';
import type { Limits } from '../config/schema';
import { checkBudget, resolveLimits } from './budget';
import { planMetricsRead, readMetrics, type Format, type MetricsRead, type TimeRange } from './engine';
import { QueryError } from './errors';
import { freshnessOf, type Freshness } from './freshness';
import { stringifyFrames, type DataFrame, type FrameMeta } from './frames';
import { freshnessFrame, statusFrame } from './status-frames';
import { QueryBusyError, QueryGate } from './gate';
import { planBuckets, type Plan } from './step';

export type QueryKind = 'metrics' | 'freshness' | 'status';

export interface QueryItem {
  refId: string;
  kind?: QueryKind;
  dataset?: string;
  aggregations?: string[];
  groupBy?: string[];
  filters?: Record<string, string[]>;
  format?: Format;
}

export interface QueryRequest {
  range: TimeRange;
  intervalMs: number;
  maxDataPoints: number;
  queries: QueryItem[];
}

export interface RefIdResult {
  frames?: DataFrame[];
  /** Metrics frames from the response cache, serialized with slots for the refId and the meta. */
  cached?: CachedFrames;
  error?: string;
  status?: number;
}

export interface CachedFrames {
  /** The frames' JSON with {@link REF_ID_SLOT} and {@link META_SLOT} in them. */
  json: string;
  /** What `json` was computed from: the response-cache key and data stamp. */
  source: string;
  /** The frames' meta (freshness), serialized. */
  meta: string;
}

/**
 * Cached metrics frames are stored serialized, with placeholders where each answer's refId
 * and freshness go, so a hit costs at most two string replacements instead of a parse and a
 * re-serialization of every point (none when the route has these bytes already: `bodyKey`).
 */
const REF_ID_SLOT = JSON.stringify('\u0000livesync:refId\u0000');
const META_SLOT = JSON.stringify('\u0000livesync:meta\u0000');

/** The response body of `/api/query`, splicing pre-serialized frames in with their refId and meta. */
export function serializeResults(results: Record<string, RefIdResult>, message?: string): string {
  const entries = Object.entries(results).map(([refId, r]) => {
    const value =
      r.cached === undefined
        ? JSON.stringify(r)
        : `{"frames":${r.cached.json.replaceAll(REF_ID_SLOT, JSON.stringify(refId)).replaceAll(META_SLOT, r.cached.meta)}}`;
    return `${JSON.stringify(refId)}:${value}`;
  });
  return `{${message === undefined ? '' : `"message":${JSON.stringify(message)},`}"results":{${entries.join(',')}}}`;
}

/**
 * A name for the exact body {@link serializeResults} makes of these results, without making
 * it: equal names, equal bytes. Null when a result holds frames built for this request only
 * (freshness and status, whose ages move every time).
 */
export function bodyKey(results: Record<string, RefIdResult>, message?: string): string | null {
  const parts: unknown[] = [message ?? null];
  for (const [refId, r] of Object.entries(results)) {
    if (r.frames !== undefined) return null;
    parts.push(refId, r.cached ? [r.cached.source, r.cached.meta] : [r.error, r.status]);
  }
  return JSON.stringify(parts);
}

export interface QueryOutcome {
  /** Strong validator of the whole answer, from the data versions and freshness it depends on. */
  etag: string;
  /** Null when the caller's validator matched: answer 304. */
  results: Record<string, RefIdResult> | null;
  /** Response-cache result per metrics query. */
  cache: CacheResult[];
  /** Datasets and kinds answered, for usage metrics. */
  answered: { dataset: string; kind: QueryKind }[];
}

export interface DatasetsView {
  get(name: string): DatasetSpec | undefined;
  all(): DatasetSpec[];
  status(name: string): DatasetStatus;
  /** Checks the store still holds what these datasets synced, before they are answered (sync/manager.ts). */
  checkStore(names: string[]): Promise<void>;
}

/** A query checked and planned, ready to be answered or matched against a validator. */
type Prepared =
  | {
      refId: string;
      kind: 'metrics';
      spec: DatasetSpec;
      query: QueryItem & { dataset: string; aggregations: string[] };
      plan: Plan;
      where: string;
    }
  | { refId: string; kind: 'freshness' | 'status'; specs: DatasetSpec[] }
  | { refId: string; kind: 'error'; error: QueryError };

const UNEXPANDED_VARIABLE = /^\$\w+$|^\$\{[^}]+\}$|^\{[^}]*,[^}]*\}$|^\([^)]*\|[^)]*\)$/;

/**
 * Answers `/api/query`: metrics from rollups through the response cache, freshness and
 * status from the sync engines, each frame carrying how fresh its dataset is.
 */
export class QueryService {
  /** What one request may cost and how many are computed at once (`server.limits`). */
  readonly limits: Limits;
  /** Bounds the metrics computations under way; tests and the overload plugin read its stats. */
  readonly gate: QueryGate;

  constructor(
    private readonly store: Store,
    private readonly datasets: DatasetsView,
    private readonly cache: ResponseCache,
    private readonly now: () => number = Date.now,
    limits: Partial<Limits> = {},
  ) {
    this.limits = resolveLimits(limits);
    this.gate = new QueryGate(this.limits.maxConcurrentQueries, this.limits.maxQueuedQueries);
  }

  async execute(
    request: QueryRequest,
    options: { bypass: boolean; ifNoneMatch?: string },
  ): Promise<QueryOutcome> {
    const { range } = request;
    if (range.from >= range.to) throw new QueryError('range: from must be before to');
    const prepared = request.queries.map((q, i) => this.prepare(request, q, `queries[${i}]`));
    // Every metrics query is sized (its groups listed, nothing read) beside its data stamp,
    // and the request as a whole checked against the budget before anything heavy happens,
    // cached or not (query/budget.ts).
    const [stamps, reads] = await Promise.all([
      Promise.all(
        prepared.map((p) =>
          p.kind === 'metrics' ? this.store.dataStamp(p.spec.name, p.plan.from, p.plan.to) : '',
        ),
      ),
      Promise.all(prepared.map((p, i) => this.size(prepared, i))),
      this.datasets.checkStore(
        prepared.flatMap((p) =>
          p.kind === 'metrics' ? [p.spec.name] : p.kind === 'error' ? [] : p.specs.map((s) => s.name),
        ),
      ),
    ]);
    checkBudget(
      reads.flatMap((r) => (r ? [r.cost] : [])),
      this.limits,
    );
    const now = this.now();
    const freshness = new Map(
      this.datasets.all().map((spec) => [spec.name, freshnessOf(spec, this.datasets.status(spec.name), now)]),
    );
    const etag = this.etag(prepared, stamps, freshness);
    const answered = prepared.flatMap((p): { dataset: string; kind: QueryKind }[] =>
      p.kind === 'metrics'
        ? [{ dataset: p.spec.name, kind: p.kind }]
        : p.kind === 'error'
          ? []
          : p.specs.map((s) => ({ dataset: s.name, kind: p.kind })),
    );
    if (!options.bypass && options.ifNoneMatch === etag) return { etag, results: null, cache: [], answered };

    const cache: CacheResult[] = [];
    const results: Record<string, RefIdResult> = {};
    // Cache lookups run side by side; the request's computations run one after another
    // under one slot of the gate (query/gate.ts), taken at its first miss.
    const lease = this.gate.lease();
    const settled = await Promise.allSettled(
      prepared.map(async (p, i) => {
        if (p.kind === 'error') {
          results[p.refId] = { error: p.error.message, status: p.error.statusCode };
          return;
        }
        if (p.kind !== 'metrics') {
          results[p.refId] = {
            frames: [
              (p.kind === 'freshness' ? freshnessFrame : statusFrame)(
                p.refId,
                p.specs.map((spec) => ({
                  status: this.datasets.status(spec.name),
                  f: freshness.get(spec.name)!,
                })),
              ),
            ],
          };
          return;
        }
        const key = ResponseCache.key([
          p.spec.name,
          p.query.aggregations,
          p.query.groupBy ?? [],
          sortedFilters(p.query.filters),
          p.query.format ?? 'timeseries',
          p.plan,
        ]);
        try {
          const { value, result } = await this.cache.get(key, stamps[i]!, options.bypass, () =>
            lease.run(async () => {
              const frames = await readMetrics(this.store, reads[i]!);
              for (const frame of frames) {
                frame.schema.refId = JSON.parse(REF_ID_SLOT) as string;
                frame.schema.meta = JSON.parse(META_SLOT) as FrameMeta;
              }
              return stringifyFrames(frames);
            }),
          );
          cache.push(result);
          const f = freshness.get(p.spec.name)!;
          const meta: FrameMeta = {
            custom: {
              lastSyncAt: f.lastSyncAt,
              ageSeconds: f.ageSeconds,
              state: f.state,
              // The totals are partial (a resync after a store loss has not caught up): for machines, beside the notice.
              incomplete: f.incomplete,
              stepMs: p.plan.stepMs,
              // The dataset's data version when answered: a live client skips changes up to it.
              version: f.version,
            },
            ...(f.notice || p.plan.coarsened
              ? {
                  notices: [
                    ...(f.notice ? [f.notice] : []),
                    ...(p.plan.coarsened ? [{ severity: 'info' as const, text: p.plan.coarsened }] : []),
                  ],
                }
              : {}),
          };
          results[p.refId] = {
            cached: { json: value, source: `${key}@${stamps[i]}`, meta: JSON.stringify(meta) },
          };
        } catch (err) {
          if (!(err instanceof QueryError) && !(err instanceof QueryBusyError)) throw err;
          results[p.refId] = { error: err.message, status: err.statusCode };
        }
      }),
    );
    await lease.release();
    for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
    return { etag, results, cache, answered };
  }

  /** Sizes the i-th query when it is a metrics query; a query the dataset cannot answer becomes an error. */
  private async size(prepared: Prepared[], i: number): Promise<MetricsRead | null> {
    const p = prepared[i]!;
    if (p.kind !== 'metrics') return null;
    try {
      return await planMetricsRead(this.store, p.spec, p.query, p.plan, p.where);
    } catch (err) {
      if (!(err instanceof QueryError)) throw err;
      prepared[i] = { refId: p.refId, kind: 'error', error: err };
      return null;
    }
  }

  private prepare(request: QueryRequest, q: QueryItem, where: string): Prepared {
    try {
      const kind = q.kind ?? 'metrics';
      if (kind !== 'metrics') {
        if (q.dataset === undefined || q.dataset === '')
          return { refId: q.refId, kind, specs: this.datasets.all() };
        return { refId: q.refId, kind, specs: [this.spec(q.dataset, where)] };
      }
      if (!q.dataset) throw new QueryError(`${where}.dataset: a metrics query needs a dataset`);
      const spec = this.spec(q.dataset, where);
      const aggregations = q.aggregations ?? [];
      if (aggregations.length === 0)
        throw new QueryError(`${where}.aggregations: name at least one aggregation, e.g. count`);
      aggregations.forEach((a, i) => parseAggregation(a, spec, `${where}.aggregations[${i}]`));
      for (const [dimension, values] of Object.entries(q.filters ?? {})) {
        values.forEach((v, i) => {
          if (UNEXPANDED_VARIABLE.test(v)) {
            throw new QueryError(
              `${where}.filters.${dimension}[${i}]: "${v}" looks like a template variable that was not expanded; send one value per item`,
            );
          }
        });
      }
      const plan = planBuckets(
        spec,
        request.range.from,
        request.range.to,
        request.intervalMs,
        request.maxDataPoints,
        { distinct: countsDistinct(aggregations) },
      );
      const cutoff = Math.floor((this.now() - spec.retentionMs) / plan.stepMs) * plan.stepMs;
      if (plan.to <= cutoff) {
        throw new QueryError(
          `range: the whole range is older than ${spec.name}'s retention (${formatDuration(spec.retentionMs)})`,
        );
      }
      // Nothing is kept before retention: neither read nor answer buckets there.
      plan.from = Math.max(plan.from, cutoff);
      return { refId: q.refId, kind, spec, query: { ...q, dataset: q.dataset, aggregations }, plan, where };
    } catch (err) {
      if (err instanceof QueryError) return { refId: q.refId, kind: 'error', error: err };
      throw err;
    }
  }

  private spec(name: string, where: string): DatasetSpec {
    const spec = this.datasets.get(name);
    if (!spec) throw new QueryError(`${where}.dataset: unknown dataset "${name}"`, 404);
    return spec;
  }

  private etag(prepared: Prepared[], stamps: string[], freshness: Map<string, Freshness>): string {
    const hash = createHash('sha1');
    prepared.forEach((p, i) => {
      if (p.kind === 'metrics') {
        const f = freshness.get(p.spec.name)!;
        hash.update(
          JSON.stringify([p.refId, p.query, p.plan, stamps[i], f.state, f.stale, f.notice?.text ?? '']),
        );
      } else if (p.kind === 'error') {
        hash.update(JSON.stringify([p.refId, p.error.message]));
      } else {
        // Freshness and status rows carry ages that move every second: never the same twice.
        hash.update(JSON.stringify([p.refId, p.kind, this.now(), Math.random()]));
      }
    });
    return `"${hash.digest('base64url')}"`;
  }
}

function sortedFilters(filters: Record<string, string[]> | undefined): [string, string[]][] {
  return Object.entries(filters ?? {})
    .map(([k, v]): [string, string[]] => [k, [...v].sort()])
    .sort(([a], [b]) => (a < b ? -1 : 1));
}
