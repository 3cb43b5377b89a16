import { CELL, projectionDimensions, projectionOf, type DatasetSpec } from '../config/dataset';
import type { RollupGroup, Store } from '../store/types';
import { parseAggregation, type Aggregation } from './aggregations';
import { QueryError } from './errors';
import type { DataFrame, FieldSchema } from './frames';
import { planBuckets, type Plan } from './step';

export type Format = 'timeseries' | 'table';

export interface MetricsQuery {
  refId: string;
  dataset: string;
  aggregations: string[];
  groupBy?: string[];
  filters?: Record<string, string[]>;
  format?: Format;
}

export interface TimeRange {
  from: number;
  to: number;
}

/** Cap on stored cells one query may read (groups × buckets), so a query cannot stall the service. */
export const MAX_CELLS_READ = 2_000_000;

/** One output group: the projection groups folded into it and its per-step totals. */
interface Series {
  labels: (string | null)[];
  members: (string | null)[][];
  steps: Float64Array;
}

/**
 * Answers a metrics query from the stored rollups: picks the step and tier, reads the
 * projection that holds exactly the group-by and filter dimensions, folds tier buckets
 * into steps and filtered groups into output groups, then shapes Grafana frames.
 */
export async function runMetricsQuery(
  store: Store,
  spec: DatasetSpec,
  query: MetricsQuery,
  range: TimeRange,
  intervalMs: number,
  maxDataPoints: number,
  where: string,
  planned?: Plan,
): Promise<{ frames: DataFrame[]; plan: Plan }> {
  const aggregations = query.aggregations.map((a, i) =>
    parseAggregation(a, spec, `${where}.aggregations[${i}]`),
  );
  if (aggregations.length === 0)
    throw new QueryError(`${where}.aggregations: name at least one aggregation, e.g. count`);
  const groupBy = query.groupBy ?? [];
  const filters = query.filters ?? {};
  checkDimensions(spec, groupBy, `${where}.groupBy`);
  checkDimensions(spec, Object.keys(filters), `${where}.filters`);

  const plan = planned ?? planBuckets(spec, range.from, range.to, intervalMs, maxDataPoints);
  const projection = projectionOf(spec.dimensions, new Set([...groupBy, ...Object.keys(filters)]));
  const dims = projectionDimensions(projection, spec.dimensions.length).map((i) => spec.dimensions[i]!);
  const accept = acceptFilters(dims, filters);
  // Check the size of the read before making it: groups x buckets bounds memory and time.
  const tierBuckets = (plan.to - plan.from) / plan.tierMs;
  const candidates = (await store.readGroups(spec.name, projection)).filter((g) => !accept || accept(g));
  if (candidates.length * tierBuckets > MAX_CELLS_READ) {
    throw new QueryError(
      `${where}: the range needs ${candidates.length * tierBuckets} stored buckets (${candidates.length} groups × ${tierBuckets}); narrow the range or the groups, or raise the interval`,
    );
  }
  const groups = await store.readRollups(spec.name, {
    tierMs: plan.tierMs,
    projection,
    from: plan.from,
    to: plan.to,
    accept,
    groups: candidates,
  });
  const series = foldSeries(spec, groups, dims, groupBy, plan);
  const distinct = await countDistinct(store, spec, aggregations, series, projection, plan);
  const format = query.format ?? 'timeseries';
  const frames =
    format === 'table'
      ? [tableFrame(spec, query.refId, aggregations, series, groupBy, plan, distinct)]
      : timeseriesFrames(spec, query.refId, aggregations, series, groupBy, plan, distinct);
  return { frames, plan };
}

function checkDimensions(spec: DatasetSpec, names: string[], where: string): void {
  for (const name of names) {
    if (!spec.dimensions.includes(name)) {
      const known = spec.dimensions.length > 0 ? `known: ${spec.dimensions.join(', ')}` : 'it has none';
      throw new QueryError(`${where}: "${name}" is not a dimension of ${spec.name} (${known})`);
    }
  }
}

function acceptFilters(dims: string[], filters: Record<string, string[]>) {
  const tests = dims.map((d) => (filters[d] ? new Set(filters[d]) : null));
  if (tests.every((t) => t === null)) return undefined;
  return (values: (string | null)[]) => tests.every((t, i) => t === null || t.has(values[i] ?? ''));
}

/** Folds projection groups into output groups and tier buckets into steps. */
function foldSeries(
  spec: DatasetSpec,
  groups: RollupGroup[],
  dims: string[],
  groupBy: string[],
  plan: Plan,
): Series[] {
  const F = spec.layout.fieldCount;
  const M = spec.metrics.length;
  const steps = (plan.to - plan.from) / plan.stepMs;
  const perStep = plan.stepMs / plan.tierMs;
  const labelIndex = groupBy.map((g) => dims.indexOf(g));
  const byLabels = new Map<string, Series>();
  for (const group of groups) {
    const labels = labelIndex.map((i) => group.values[i] ?? null);
    const key = JSON.stringify(labels);
    let series = byLabels.get(key);
    if (!series) {
      series = { labels, members: [], steps: new Float64Array(steps * F) };
      byLabels.set(key, series);
    }
    series.members.push(group.values);
    const out = series.steps;
    if (perStep === 1 && series.members.length === 1) {
      // A step that is one stored bucket, into an empty series: the cells are the answer.
      out.set(group.cells);
      continue;
    }
    for (let b = 0; b < steps * perStep; b++) {
      const src = b * F;
      if (group.cells[src]! <= 0) continue;
      const dst = Math.floor(b / perStep) * F;
      out[dst] = out[dst]! + group.cells[src]!;
      for (let m = 0; m < M; m++) {
        const nn = group.cells[src + CELL.nonNull(m)]!;
        if (nn <= 0) continue;
        const had = out[dst + CELL.nonNull(m)]! > 0;
        out[dst + CELL.sum(m)] = out[dst + CELL.sum(m)]! + group.cells[src + CELL.sum(m)]!;
        out[dst + CELL.nonNull(m)] = out[dst + CELL.nonNull(m)]! + nn;
        const lo = group.cells[src + CELL.min(m)]!;
        const hi = group.cells[src + CELL.max(m)]!;
        out[dst + CELL.min(m)] = had ? Math.min(out[dst + CELL.min(m)]!, lo) : lo;
        out[dst + CELL.max(m)] = had ? Math.max(out[dst + CELL.max(m)]!, hi) : hi;
      }
    }
  }
  return [...byLabels.values()].sort((a, b) => compareLabels(a.labels, b.labels));
}

function compareLabels(a: (string | null)[], b: (string | null)[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? '';
    const y = b[i] ?? '';
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Distinct counts per series and step: HyperLogLog unions over the series' groups and buckets. */
async function countDistinct(
  store: Store,
  spec: DatasetSpec,
  aggregations: Aggregation[],
  series: Series[],
  projection: number,
  plan: Plan,
): Promise<Map<string, number[]>> {
  const F = spec.layout.fieldCount;
  const out = new Map<string, number[]>();
  const fields = [...new Set(aggregations.flatMap((a) => (a.fn === 'distinct' ? [a.field] : [])))];
  await Promise.all(
    series.flatMap((s, si) =>
      fields.map(async (field) => {
        const ranges: [number, number][] = [];
        for (let i = 0; i * F < s.steps.length; i++) {
          if (s.steps[i * F]! > 0)
            ranges.push([plan.from + i * plan.stepMs, plan.from + (i + 1) * plan.stepMs]);
        }
        const counts = await store.countDistinct(spec.name, {
          tierMs: plan.tierMs,
          projection,
          groups: s.members,
          field,
          ranges,
        });
        out.set(`${si}:${field}`, counts);
      }),
    ),
  );
  return out;
}

function value(agg: Aggregation, cell: Float64Array, at: number): number | null {
  switch (agg.fn) {
    case 'count':
      return cell[at]!;
    case 'distinct':
      return null;
    default: {
      const nn = cell[at + CELL.nonNull(agg.metric)]!;
      if (nn <= 0) return null;
      if (agg.fn === 'sum') return cell[at + CELL.sum(agg.metric)]!;
      if (agg.fn === 'avg') return cell[at + CELL.sum(agg.metric)]! / nn;
      return cell[at + (agg.fn === 'min' ? CELL.min(agg.metric) : CELL.max(agg.metric))]!;
    }
  }
}

/** Rows of one series: the steps that hold records, with every aggregation's value. */
function rows(
  spec: DatasetSpec,
  aggregations: Aggregation[],
  s: Series,
  si: number,
  plan: Plan,
  distinct: Map<string, number[]>,
) {
  const F = spec.layout.fieldCount;
  const times: number[] = [];
  const columns: (number | null)[][] = aggregations.map(() => []);
  for (let i = 0; i * F < s.steps.length; i++) {
    const at = i * F;
    if (s.steps[at]! <= 0) continue;
    // Distinct counts were read for exactly these steps, in this order.
    const row = times.push(plan.from + i * plan.stepMs) - 1;
    aggregations.forEach((agg, a) => {
      columns[a]!.push(
        agg.fn === 'distinct' ? (distinct.get(`${si}:${agg.field}`)?.[row] ?? 0) : value(agg, s.steps, at),
      );
    });
  }
  return { times, columns };
}

const TIME_FIELD: FieldSchema = { name: 'time', type: 'time', typeInfo: { frame: 'time.Time' } };

function numberField(name: string, labels?: Record<string, string>): FieldSchema {
  return {
    name,
    type: 'number',
    typeInfo: { frame: 'float64', nullable: true },
    ...(labels ? { labels } : {}),
  };
}

function timeseriesFrames(
  spec: DatasetSpec,
  refId: string,
  aggregations: Aggregation[],
  series: Series[],
  groupBy: string[],
  plan: Plan,
  distinct: Map<string, number[]>,
): DataFrame[] {
  if (series.length === 0) {
    return [
      {
        schema: { refId, fields: [TIME_FIELD, ...aggregations.map((a) => numberField(a.name))] },
        data: { values: [[], ...aggregations.map(() => [])] },
      },
    ];
  }
  return series.map((s, si) => {
    const { times, columns } = rows(spec, aggregations, s, si, plan, distinct);
    const labels =
      groupBy.length > 0 ? Object.fromEntries(groupBy.map((g, i) => [g, s.labels[i] ?? ''])) : undefined;
    return {
      schema: { refId, fields: [TIME_FIELD, ...aggregations.map((a) => numberField(a.name, labels))] },
      data: { values: [times, ...columns] },
    };
  });
}

function tableFrame(
  spec: DatasetSpec,
  refId: string,
  aggregations: Aggregation[],
  series: Series[],
  groupBy: string[],
  plan: Plan,
  distinct: Map<string, number[]>,
): DataFrame {
  const perSeries = series.map((s, si) => ({ s, ...rows(spec, aggregations, s, si, plan, distinct) }));
  const entries = perSeries.flatMap(({ s, times, columns }) =>
    times.map((t, r) => ({ t, labels: s.labels, values: columns.map((c) => c[r] ?? null) })),
  );
  // Long format: ordered by time, then by group, as SQL `ORDER BY time, group` would.
  entries.sort((a, b) => a.t - b.t || compareLabels(a.labels, b.labels));
  return {
    schema: {
      refId,
      fields: [
        TIME_FIELD,
        ...groupBy.map((g): FieldSchema => ({
          name: g,
          type: 'string',
          typeInfo: { frame: 'string', nullable: true },
        })),
        ...aggregations.map((a) => numberField(a.name)),
      ],
    },
    data: {
      values: [
        entries.map((e) => e.t),
        ...groupBy.map((_, i) => entries.map((e) => e.labels[i] ?? null)),
        ...aggregations.map((_, a) => entries.map((e) => e.values[a] ?? null)),
      ],
    },
  };
}
