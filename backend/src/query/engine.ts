import {
  CELL,
  keptProjection,
  projectionDimensions,
  projectionOf,
  type DatasetSpec,
} from '../config/dataset';
import { formatDuration } from '../config/duration';
import type { RollupGroup, Store } from '../store/types';
import { countsDistinct, parseAggregation, type Aggregation } from './aggregations';
import { checkBudget, queryCost, resolveLimits, type QueryCost } from './budget';
import { QueryError } from './errors';
import type { DataFrame, FieldSchema } from './frames';
import { Pacer } from './pace';
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

/**
 * Doubles of rollups read from the store in one piece (2 MB): a query reads its groups in
 * pieces of about this size and folds each before reading the next, so what it holds is
 * its answer plus one piece, however many cells the range covers.
 */
const READ_CHUNK_DOUBLES = 1 << 18;

/** Series whose distinct counts are asked for at once. */
const DISTINCT_SERIES_AT_ONCE = 16;

/** One output group: the projection groups folded into it and its per-step totals. */
interface Series {
  labels: (string | null)[];
  members: (string | null)[][];
  steps: Float64Array;
}

/** A metrics query checked against the dataset and sized against its stored groups; nothing read yet. */
export interface MetricsRead {
  spec: DatasetSpec;
  query: MetricsQuery;
  aggregations: Aggregation[];
  plan: Plan;
  projection: number;
  /** The projection's dimensions, in declaration order. */
  dims: string[];
  accept: ((values: (string | null)[]) => boolean) | undefined;
  /** The projection's groups that pass the filters: what reading will fetch. */
  groups: (string | null)[][];
  /** What answering costs, before anything is read (query/budget.ts). */
  cost: QueryCost;
}

/**
 * Answers a metrics query from the stored rollups: picks the step and tier, reads the
 * smallest kept projection that holds the group-by and filter dimensions (keptProjection),
 * folds tier buckets into steps and filtered groups into output groups, then shapes Grafana
 * frames.
 * Refuses a query that alone costs more than the default limits; the service sums the
 * cost of every query of a request instead (see `planMetricsRead`).
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
  const distinct = countsDistinct(query.aggregations);
  const plan = planned ?? planBuckets(spec, range.from, range.to, intervalMs, maxDataPoints, { distinct });
  const read = await planMetricsRead(store, spec, query, plan, where);
  checkBudget([read.cost], resolveLimits());
  return { frames: await readMetrics(store, read), plan };
}

/**
 * Checks a metrics query and sizes it: lists the groups it would read (one store call,
 * no rollups) and prices it with the one cost rule, so a request can be refused before
 * anything heavy happens.
 */
export async function planMetricsRead(
  store: Store,
  spec: DatasetSpec,
  query: MetricsQuery,
  plan: Plan,
  where: string,
): Promise<MetricsRead> {
  const aggregations = query.aggregations.map((a, i) =>
    parseAggregation(a, spec, `${where}.aggregations[${i}]`),
  );
  if (aggregations.length === 0)
    throw new QueryError(`${where}.aggregations: name at least one aggregation, e.g. count`);
  const distinctMs = spec.layout.tiers[spec.layout.distinctTier]!;
  if (aggregations.some((a) => a.fn === 'distinct') && plan.tierMs < distinctMs)
    throw new QueryError(
      `${where}.aggregations: ${spec.name} keeps distinct counts per ${formatDuration(distinctMs)} and coarser, not per ${formatDuration(plan.tierMs)}`,
    );
  const groupBy = query.groupBy ?? [];
  const filters = query.filters ?? {};
  checkDimensions(spec, groupBy, `${where}.groupBy`);
  checkDimensions(spec, Object.keys(filters), `${where}.filters`);

  const projection = keptProjection(
    spec.layout,
    projectionOf(spec.dimensions, new Set([...groupBy, ...Object.keys(filters)])),
  );
  const dims = projectionDimensions(projection, spec.dimensions.length).map((i) => spec.dimensions[i]!);
  const accept = acceptFilters(dims, filters);
  const groups = (await store.readGroups(spec.name, projection)).filter((g) => !accept || accept(g));
  const labelIndex = groupBy.map((g) => dims.indexOf(g));
  const series =
    groups.length === 0 || labelIndex.length === dims.length
      ? groups.length
      : new Set(groups.map((g) => JSON.stringify(labelIndex.map((i) => g[i] ?? null)))).size;
  const table = (query.format ?? 'timeseries') === 'table';
  const cost = queryCost({
    groups: groups.length,
    series,
    tierBuckets: (plan.to - plan.from) / plan.tierMs,
    steps: (plan.to - plan.from) / plan.stepMs,
    fieldsPerRow: 1 + (table ? groupBy.length : 0) + aggregations.length,
  });
  return { spec, query, aggregations, plan, projection, dims, accept, groups, cost };
}

/**
 * Reads, folds and shapes a planned query. Groups are read in pieces of about
 * READ_CHUNK_DOUBLES and the event loop gets a turn between pieces and while frames are
 * shaped, so a heavy query neither holds all its rollups at once nor stalls other requests.
 */
export async function readMetrics(store: Store, read: MetricsRead): Promise<DataFrame[]> {
  const { spec, query, aggregations, plan, projection, dims, groups } = read;
  const groupBy = query.groupBy ?? [];
  const pacer = new Pacer();
  const folder = new SeriesFolder(spec, dims, groupBy, plan);
  const perGroup = ((plan.to - plan.from) / plan.tierMs) * spec.layout.fieldCount;
  const chunk = Math.max(1, Math.floor(READ_CHUNK_DOUBLES / Math.max(1, perGroup)));
  for (let at = 0; at < groups.length; at += chunk) {
    const piece = groups.slice(at, at + chunk);
    // The whole list in one read needs no membership test; a piece does (stores may list groups themselves).
    const accept = piece.length === groups.length ? read.accept : membership(piece, read.accept);
    const rollups = await store.readRollups(spec.name, {
      tierMs: plan.tierMs,
      projection,
      from: plan.from,
      to: plan.to,
      accept,
      groups: piece,
    });
    await folder.add(rollups, pacer);
  }
  const series = folder.result();
  const distinct = await countDistinct(store, spec, aggregations, series, projection, plan, pacer);
  return (query.format ?? 'timeseries') === 'table'
    ? [await tableFrame(spec, query.refId, aggregations, series, groupBy, plan, distinct, pacer)]
    : await timeseriesFrames(spec, query.refId, aggregations, series, groupBy, plan, distinct, pacer);
}

function membership(
  piece: (string | null)[][],
  accept: ((values: (string | null)[]) => boolean) | undefined,
): (values: (string | null)[]) => boolean {
  const keys = new Set(piece.map((g) => JSON.stringify(g)));
  return (values) => keys.has(JSON.stringify(values)) && (!accept || accept(values));
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

/** Folds projection groups into output groups and tier buckets into steps, a piece of groups at a time. */
class SeriesFolder {
  private readonly byLabels = new Map<string, Series>();
  private readonly F: number;
  private readonly M: number;
  private readonly steps: number;
  private readonly perStep: number;
  private readonly labelIndex: number[];

  constructor(spec: DatasetSpec, dims: string[], groupBy: string[], plan: Plan) {
    this.F = spec.layout.fieldCount;
    this.M = spec.metrics.length;
    this.steps = (plan.to - plan.from) / plan.stepMs;
    this.perStep = plan.stepMs / plan.tierMs;
    this.labelIndex = groupBy.map((g) => dims.indexOf(g));
  }

  async add(groups: RollupGroup[], pacer: Pacer): Promise<void> {
    const { F, M, steps, perStep } = this;
    for (const group of groups) {
      await pacer.tick();
      const labels = this.labelIndex.map((i) => group.values[i] ?? null);
      const key = JSON.stringify(labels);
      let series = this.byLabels.get(key);
      if (!series) {
        series = { labels, members: [], steps: new Float64Array(steps * F) };
        this.byLabels.set(key, series);
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
  }

  result(): Series[] {
    return [...this.byLabels.values()].sort((a, b) => compareLabels(a.labels, b.labels));
  }
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
  pacer: Pacer,
): Promise<Map<string, number[]>> {
  const F = spec.layout.fieldCount;
  const out = new Map<string, number[]>();
  const fields = [...new Set(aggregations.flatMap((a) => (a.fn === 'distinct' ? [a.field] : [])))];
  if (fields.length === 0) return out;
  // A few series at a time, with a turn of the event loop between: an in-memory store counts synchronously.
  for (let at = 0; at < series.length; at += DISTINCT_SERIES_AT_ONCE) {
    await countDistinctOf(series.slice(at, at + DISTINCT_SERIES_AT_ONCE), at);
    await pacer.tick();
  }
  return out;

  async function countDistinctOf(batch: Series[], offset: number): Promise<void> {
    await Promise.all(
      batch.flatMap((s, bi) =>
        fields.map(async (field) => {
          const si = offset + bi;
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
  }
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

async function timeseriesFrames(
  spec: DatasetSpec,
  refId: string,
  aggregations: Aggregation[],
  series: Series[],
  groupBy: string[],
  plan: Plan,
  distinct: Map<string, number[]>,
  pacer: Pacer,
): Promise<DataFrame[]> {
  if (series.length === 0) {
    return [
      {
        schema: { refId, fields: [TIME_FIELD, ...aggregations.map((a) => numberField(a.name))] },
        data: { values: [[], ...aggregations.map(() => [])] },
      },
    ];
  }
  const frames: DataFrame[] = [];
  for (const [si, s] of series.entries()) {
    const { times, columns } = rows(spec, aggregations, s, si, plan, distinct);
    const labels =
      groupBy.length > 0 ? Object.fromEntries(groupBy.map((g, i) => [g, s.labels[i] ?? ''])) : undefined;
    frames.push({
      schema: { refId, fields: [TIME_FIELD, ...aggregations.map((a) => numberField(a.name, labels))] },
      data: { values: [times, ...columns] },
    });
    await pacer.tick();
  }
  return frames;
}

async function tableFrame(
  spec: DatasetSpec,
  refId: string,
  aggregations: Aggregation[],
  series: Series[],
  groupBy: string[],
  plan: Plan,
  distinct: Map<string, number[]>,
  pacer: Pacer,
): Promise<DataFrame> {
  const perSeries: { s: Series; times: number[]; columns: (number | null)[][] }[] = [];
  for (const [si, s] of series.entries()) {
    perSeries.push({ s, ...rows(spec, aggregations, s, si, plan, distinct) });
    await pacer.tick();
  }
  // Long format: ordered by time, then by group, as SQL `ORDER BY time, group` would. Each
  // series is in time order and the series are in group order, so a merge over the steps
  // gives that order without sorting every row.
  const times: number[] = [];
  const labels: (string | null)[][] = groupBy.map(() => []);
  const values: (number | null)[][] = aggregations.map(() => []);
  const next = perSeries.map(() => 0);
  const steps = (plan.to - plan.from) / plan.stepMs;
  for (let i = 0; i < steps; i++) {
    const t = plan.from + i * plan.stepMs;
    perSeries.forEach((p, k) => {
      const r = next[k]!;
      if (p.times[r] !== t) return;
      next[k] = r + 1;
      times.push(t);
      groupBy.forEach((_, g) => labels[g]!.push(p.s.labels[g] ?? null));
      aggregations.forEach((_, a) => values[a]!.push(p.columns[a]![r] ?? null));
    });
    await pacer.tick();
  }
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
    data: { values: [times, ...labels, ...values] },
  };
}
