import type { ComboboxOption } from '@grafana/ui';
import type { DatasetInfo } from '../api';

/** Combobox options: real values first, then template variables, keeping current values the list lacks. */
export function toOptions(
  values: string[],
  variables: string[],
  current?: string | string[],
): Array<ComboboxOption<string>> {
  const extra = current === undefined ? [] : Array.isArray(current) ? current : [current];
  return [...new Set([...values, ...variables, ...extra])]
    .filter((v) => v !== '')
    .map((value) => ({ value }));
}

/** What a dataset can aggregate: count, sum/avg/min/max of each metric, distinct of each distinct field. */
export function aggregationsOf(dataset: DatasetInfo | undefined): string[] {
  if (!dataset) return ['count'];
  return [
    'count',
    ...dataset.metrics.flatMap((m) => ['sum', 'avg', 'min', 'max'].map((fn) => `${fn}(${m})`)),
    ...dataset.distinct.map((d) => `distinct(${d})`),
  ];
}
