import {
  LoadingState,
  type QueryVariableModel,
  type ScopedVars,
  type TimeRange,
  type TypedVariableModel,
  VariableHide,
  VariableRefresh,
  VariableSort,
} from '@grafana/data';
import type { TemplateSrv, VariableInterpolation } from '@grafana/runtime';

/**
 * Grafana's template-variable syntaxes, as its TemplateSrv matches them: `$var`, `[[var]]`,
 * `[[var:format]]`, `${var}`, `${var.field}`, `${var:format}`.
 */
const VARIABLE_REGEX = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\${(\w+)(?:\.([^:^}]+))?(?::([^}]+))?}/g;

type Formatter = (value: unknown, variable?: unknown, defaultFormatter?: unknown) => string;

/**
 * Grafana's TemplateSrv for the dashboard the preview shows: its variables, the panel's scoped
 * variables (`__interval`, `__interval_ms`, …) and the time range (`__from`, `__to`).
 *
 * `replace` follows Grafana's rules: scoped variables win over dashboard variables; an unknown
 * variable is left as written; a format is a function `(value, variable, defaultFormatter)` or
 * one of Grafana's named formats (raw, regex, pipe, csv, json, glob, text, singlequote,
 * doublequote, sqlstring, queryparam, percentencode); with no format, a multi-value variable
 * is written as a glob `{a,b}` and a single value as is. Grafana's other formats (date,
 * html, distributed, lucene, customqueryparam) and the `All` value's special handling are not
 * reproduced: the preview's variables never need them.
 */
export class PreviewTemplateSrv implements TemplateSrv {
  private variables: TypedVariableModel[] = [];
  private timeRange: TimeRange | undefined;

  getVariables(): TypedVariableModel[] {
    return [...this.variables];
  }

  setVariables(variables: TypedVariableModel[]): void {
    this.variables = variables;
  }

  updateTimeRange(timeRange: TimeRange): void {
    this.timeRange = timeRange;
  }

  containsTemplate(target?: string): boolean {
    if (!target) return false;
    for (const match of target.matchAll(VARIABLE_REGEX)) {
      const name = match[1] ?? match[2] ?? match[4];
      if (name && this.lookup(name) !== undefined) return true;
    }
    return false;
  }

  replace(
    target?: string,
    scopedVars?: ScopedVars,
    format?: Parameters<TemplateSrv['replace']>[2],
    interpolations?: VariableInterpolation[],
  ): string {
    if (!target) return target ?? '';
    return target.replace(VARIABLE_REGEX, (match, var1, var2, fmt2, var3, fieldPath, fmt3) => {
      const name = (var1 ?? var2 ?? var3) as string;
      const fmt = (fmt2 ?? fmt3 ?? format) as string | Formatter | undefined;
      const scoped = scopedVars?.[name];
      let value: unknown;
      let variable: unknown;
      if (scoped) {
        value = fieldPath ? readPath(scoped.value, fieldPath as string) : scoped.value;
        variable = { name, type: 'scoped' };
      } else {
        const found = this.lookup(name);
        if (found === undefined) {
          interpolations?.push({ match, variableName: name, value: match, found: false });
          return match;
        }
        value = found.value;
        variable = found.variable;
      }
      const text = formatValue(value, fmt, variable);
      interpolations?.push({
        match,
        variableName: name,
        value: text,
        found: true,
        ...(fmt2 || fmt3 ? { format: String(fmt2 ?? fmt3) } : {}),
      });
      return text;
    });
  }

  private lookup(name: string): { value: unknown; variable: unknown } | undefined {
    if (name === '__from' && this.timeRange)
      return { value: this.timeRange.from.valueOf(), variable: { name } };
    if (name === '__to' && this.timeRange) return { value: this.timeRange.to.valueOf(), variable: { name } };
    const variable = this.variables.find((v) => v.name === name);
    if (!variable) return undefined;
    const current = 'current' in variable ? (variable.current as { value?: unknown }) : undefined;
    return { value: current?.value ?? '', variable };
  }
}

function readPath(value: unknown, path: string): unknown {
  let out: unknown = value;
  for (const key of path.split('.'))
    out = out && typeof out === 'object' ? (out as Record<string, unknown>)[key] : undefined;
  return out;
}

const quote = (value: unknown, q: string) => `${q}${String(value).replaceAll(q, `\\${q}`)}${q}`;
const escapeRegex = (value: string) => value.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');

function formatValue(value: unknown, format: string | Formatter | undefined, variable: unknown): string {
  if (typeof format === 'function') return String(format(value, variable, formatValue));
  const list = Array.isArray(value) ? value.map(String) : undefined;
  switch (format) {
    case undefined:
    case 'glob':
      return list ? (list.length > 1 ? `{${list.join(',')}}` : (list[0] ?? '')) : String(value ?? '');
    case 'raw':
    case 'text':
      return list ? list.join(' + ') : String(value ?? '');
    case 'csv':
      return list ? list.join(',') : String(value ?? '');
    case 'pipe':
      return list ? list.join('|') : String(value ?? '');
    case 'json':
      return JSON.stringify(value);
    case 'regex':
      return list ? `(${list.map(escapeRegex).join('|')})` : escapeRegex(String(value ?? ''));
    case 'singlequote':
      return list ? list.map((v) => quote(v, "'")).join(',') : quote(value, "'");
    case 'doublequote':
      return list ? list.map((v) => quote(v, '"')).join(',') : quote(value, '"');
    case 'sqlstring':
      return (list ?? [String(value ?? '')]).map((v) => `'${v.replaceAll("'", "''")}'`).join(',');
    case 'percentencode':
      return encodeURIComponent(list ? `{${list.join(',')}}` : String(value ?? ''));
    case 'queryparam': {
      const name = (variable as { name?: string } | undefined)?.name ?? '';
      return (list ?? [String(value ?? '')]).map((v) => `var-${name}=${encodeURIComponent(v)}`).join('&');
    }
    default:
      return list ? (list.length > 1 ? `{${list.join(',')}}` : (list[0] ?? '')) : String(value ?? '');
  }
}

/** A query variable as Grafana keeps it in the dashboard model, with its options resolved. */
export function queryVariable(spec: {
  name: string;
  label: string;
  datasource: { type: string; uid: string };
  query: unknown;
  definition: string;
  options: string[];
  current: string;
}): QueryVariableModel {
  return {
    id: spec.name,
    name: spec.name,
    label: spec.label,
    type: 'query',
    rootStateKey: 'preview',
    global: false,
    hide: VariableHide.dontHide,
    skipUrlSync: false,
    index: 0,
    state: LoadingState.Done,
    error: null,
    description: null,
    datasource: spec.datasource,
    definition: spec.definition,
    query: spec.query,
    regex: '',
    sort: VariableSort.disabled,
    refresh: VariableRefresh.onDashboardLoad,
    multi: false,
    includeAll: false,
    current: { selected: true, text: spec.current, value: spec.current },
    options: spec.options.map((o) => ({ selected: o === spec.current, text: o, value: o })),
  };
}
