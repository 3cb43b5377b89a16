import type { ScopedVars } from '@grafana/data';
import type { TemplateSrv } from '@grafana/runtime';

/** Marks where a variable's values go in an interpolated string. Never part of a real value. */
const SLOT = '\u0000';

/**
 * Interpolates one string into every string it stands for. A multi-value variable expands
 * into one string per value, in place: `sum($metric)` with metric = [amount, fee] gives
 * `sum(amount)` and `sum(fee)`; two multi-value variables give their product.
 */
export function expandValue(templateSrv: TemplateSrv, value: string, scopedVars?: ScopedVars): string[] {
  const lists: string[][] = [];
  const formatter = (v: unknown): string => {
    const values = Array.isArray(v) ? v.map(String) : [String(v ?? '')];
    lists.push(values);
    return `${SLOT}${lists.length - 1}${SLOT}`;
  };
  const template = templateSrv.replace(value, scopedVars, formatter);
  // Even parts are literal text, odd parts the index of a variable's value list.
  const parts = template.split(SLOT);
  let results = [''];
  parts.forEach((part, i) => {
    if (i % 2 === 0) {
      results = results.map((r) => r + part);
    } else {
      const values = lists[Number(part)] ?? [];
      results = results.flatMap((r) => values.map((v) => r + v));
    }
  });
  return results;
}

/** Interpolates a list, expanding multi-value variables, dropping blanks and repeats. */
export function expandList(
  templateSrv: TemplateSrv,
  values: string[] | undefined,
  scopedVars?: ScopedVars,
): string[] {
  const out = new Set<string>();
  for (const value of values ?? []) {
    for (const expanded of expandValue(templateSrv, value, scopedVars)) {
      const trimmed = expanded.trim();
      if (trimmed !== '') out.add(trimmed);
    }
  }
  return [...out];
}

/** Interpolates a field that holds one value (a dataset, a dimension): a multi-value variable gives its first. */
export function interpolateSingle(
  templateSrv: TemplateSrv,
  value: string | undefined,
  scopedVars?: ScopedVars,
): string {
  if (!value) return '';
  return (expandValue(templateSrv, value, scopedVars)[0] ?? '').trim();
}

/** Interpolates filter keys and values; a filter left without values is dropped (no filter, not "match nothing"). */
export function expandFilters(
  templateSrv: TemplateSrv,
  filters: Record<string, string[]> | undefined,
  scopedVars?: ScopedVars,
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [key, values] of Object.entries(filters ?? {})) {
    const dimension = interpolateSingle(templateSrv, key, scopedVars);
    const expanded = expandList(templateSrv, values, scopedVars);
    if (dimension === '' || expanded.length === 0) continue;
    out[dimension] = [...new Set([...(out[dimension] ?? []), ...expanded])];
  }
  return out;
}
