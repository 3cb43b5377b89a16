import type { LiveSyncVariableQuery } from './types';

export const VARIABLE_QUERY_SYNTAX = 'datasets | dimensions(<dataset>) | values(<dataset>, <dimension>)';

const PATTERNS: Array<[RegExp, (m: RegExpMatchArray) => Omit<LiveSyncVariableQuery, 'refId'>]> = [
  [/^datasets(?:\(\s*\))?$/i, () => ({ type: 'datasets' })],
  [/^dimensions\(\s*([^,()]+?)\s*\)$/i, (m) => ({ type: 'dimensions', dataset: m[1] })],
  [
    /^values\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)$/i,
    (m) => ({ type: 'values', dataset: m[1], dimension: m[2] }),
  ],
];

/**
 * Reads a variable query in either form Grafana may hand over: the structured one the
 * variable editor saves, or the text form (`values(orders, country)`) that older dashboards
 * and provisioning files use. Throws with the syntax when the text matches no form.
 */
export function toVariableQuery(
  query: string | Partial<LiveSyncVariableQuery> | undefined,
): LiveSyncVariableQuery {
  if (query === undefined || query === null) return { refId: 'LiveSyncVariable', type: 'datasets' };
  if (typeof query !== 'string') {
    return { ...query, refId: query.refId ?? 'LiveSyncVariable', type: query.type ?? 'datasets' };
  }
  const text = query.trim();
  if (text === '') return { refId: 'LiveSyncVariable', type: 'datasets' };
  for (const [pattern, build] of PATTERNS) {
    const match = text.match(pattern);
    if (match) return { refId: 'LiveSyncVariable', ...build(match) };
  }
  throw new Error(`LiveSync variable query "${text}" is not one of: ${VARIABLE_QUERY_SYNTAX}`);
}

/** The text form of a structured variable query, shown in the editor as a hint for provisioning. */
export function variableQueryText(query: LiveSyncVariableQuery): string {
  switch (query.type) {
    case 'datasets':
      return 'datasets';
    case 'dimensions':
      return `dimensions(${query.dataset ?? ''})`;
    case 'values':
      return `values(${query.dataset ?? ''}, ${query.dimension ?? ''})`;
  }
}
