import type { DatasetSpec } from '../config/dataset';
import { QueryError } from './errors';

export type Aggregation =
  | { name: string; fn: 'count' }
  | { name: string; fn: 'sum' | 'avg' | 'min' | 'max'; metric: number }
  | { name: string; fn: 'distinct'; field: number };

const PATTERN = /^\s*(count|sum|avg|min|max|distinct)\s*(?:\(\s*([A-Za-z_][A-Za-z0-9_$]*)\s*\))?\s*$/;

/** Parses `count`, `sum(amount)`, `avg(x)`, `min(x)`, `max(x)`, `distinct(user_id)`; `where` names the field for errors. */
export function parseAggregation(text: string, spec: DatasetSpec, where: string): Aggregation {
  const match = PATTERN.exec(text);
  if (!match) {
    throw new QueryError(
      `${where}: unknown aggregation "${text}" (use count, sum(metric), avg(metric), min(metric), max(metric) or distinct(field))`,
    );
  }
  const fn = match[1] as Aggregation['fn'];
  const arg = match[2];
  if (fn === 'count') {
    if (arg !== undefined) throw new QueryError(`${where}: count takes no field ("${text}")`);
    return { name: 'count', fn };
  }
  if (arg === undefined)
    throw new QueryError(`${where}: ${fn} needs a field, e.g. ${fn}(${spec.metrics[0] ?? 'x'})`);
  if (fn === 'distinct') {
    const field = spec.distinct.indexOf(arg);
    if (field < 0) {
      throw new QueryError(
        `${where}: "${arg}" is not a distinct field of ${spec.name} (${list(spec.distinct)})`,
      );
    }
    return { name: `distinct(${arg})`, fn, field };
  }
  const metric = spec.metrics.indexOf(arg);
  if (metric < 0)
    throw new QueryError(`${where}: "${arg}" is not a metric of ${spec.name} (${list(spec.metrics)})`);
  return { name: `${fn}(${arg})`, fn, metric };
}

function list(names: string[]): string {
  return names.length > 0 ? `known: ${names.join(', ')}` : 'it has none';
}

/** Whether any of these aggregations counts distinct values (checked or not yet). */
export function countsDistinct(aggregations: readonly string[]): boolean {
  return aggregations.some((a) => PATTERN.exec(a)?.[1] === 'distinct');
}
