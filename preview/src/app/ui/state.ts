import { type RawTimeRange, type TimeRange, dateTime, rangeUtil } from '@grafana/data';

export type TabName = 'dashboard' | 'explore' | 'datasource';

/** The page's state, kept in the URL as Grafana keeps a dashboard's: `from`, `to`, `refresh`, `var-<name>`, and the tab. */
export interface UrlState {
  tab: TabName;
  raw: RawTimeRange;
  refresh: string;
  variables: Record<string, string>;
  /** The panel being edited, as Grafana's `editPanel`. */
  editPanel?: number;
}

export function readUrlState(search = window.location.search): UrlState {
  const params = new URLSearchParams(search);
  const tab = params.get('tab');
  const variables: Record<string, string> = {};
  for (const [key, value] of params) if (key.startsWith('var-')) variables[key.slice(4)] = value;
  return {
    tab: tab === 'explore' || tab === 'datasource' ? tab : 'dashboard',
    raw: { from: params.get('from') || 'now-1h', to: params.get('to') || 'now' },
    refresh: params.get('refresh') ?? '',
    variables,
    ...(params.get('editPanel') ? { editPanel: Number(params.get('editPanel')) } : {}),
  };
}

export function writeUrlState(state: UrlState): void {
  const params = new URLSearchParams();
  if (state.tab !== 'dashboard') params.set('tab', state.tab);
  params.set('from', rawText(state.raw.from));
  params.set('to', rawText(state.raw.to));
  if (state.refresh) params.set('refresh', state.refresh);
  for (const [name, value] of Object.entries(state.variables)) params.set(`var-${name}`, value);
  if (state.editPanel !== undefined) params.set('editPanel', String(state.editPanel));
  const url = `${window.location.pathname}?${params.toString()}`;
  if (url !== `${window.location.pathname}${window.location.search}`)
    window.history.replaceState(null, '', url);
}

function rawText(value: RawTimeRange['from']): string {
  return typeof value === 'string' ? value : String(value.valueOf());
}

/** The range a refresh runs with: relative ends resolved against now, as Grafana's time service does. */
export function resolveRange(raw: RawTimeRange, timeZone: string): TimeRange {
  // An absolute end is written to the URL as epoch milliseconds, as Grafana writes it.
  const parse = (v: RawTimeRange['from']) =>
    typeof v === 'string' && /^\d+$/.test(v) ? dateTime(Number(v)) : v;
  const range = rangeUtil.convertRawToRange({ from: parse(raw.from), to: parse(raw.to) }, timeZone);
  return { ...range, raw };
}
