import type {
  AnnotationQuery,
  DataQuery,
  DataSourceRef,
  FieldConfigSource,
  ThresholdsConfig,
} from '@grafana/data';
import { ThresholdsMode } from '@grafana/data';
import { panelIds } from '../testIds';

export type PanelType = 'timeseries' | 'stat' | 'table';

/** The plugin's query model, as a dashboard saves it (the preview never imports the plugin's types). */
export interface LiveSyncTarget extends DataQuery {
  kind?: 'metrics' | 'freshness' | 'status' | 'annotations';
  dataset?: string;
  aggregations?: string[];
  groupBy?: string[];
  filters?: Record<string, string[]>;
  format?: 'timeseries' | 'table';
  annotationKinds?: Array<'failure' | 'resync' | 'pause'>;
  minRecords?: number;
  live?: boolean;
}

export interface PanelModel {
  id: number;
  title: string;
  description: string;
  type: PanelType;
  /** Columns and rows on a 24-column grid, as Grafana's gridPos. */
  gridPos: { x: number; y: number; w: number; h: number };
  targets: LiveSyncTarget[];
  fieldConfig: FieldConfigSource;
  /** Grafana's "Min interval" query option. */
  interval?: string;
  /** Whether the dashboard's annotations are drawn on it. */
  annotations?: boolean;
  /** Stat panels: the fields shown (Grafana's reduce option "Fields"). */
  statFields?: string;
}

export interface DashboardModel {
  uid: string;
  title: string;
  timezone: string;
  annotations: AnnotationQuery[];
  panels: PanelModel[];
}

/** Green below half of `staleAfter`, orange up to it, red beyond: the data-age stat's colours. */
export function staleThresholds(staleAfterSeconds: number): ThresholdsConfig {
  return {
    mode: ThresholdsMode.Absolute,
    steps: [
      { value: -Infinity, color: 'green' },
      { value: staleAfterSeconds / 2, color: 'orange' },
      { value: staleAfterSeconds, color: 'red' },
    ],
  };
}

/** `2m` → 120: the service's durations, in seconds. */
export function durationSeconds(text: string | undefined): number | undefined {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text?.trim() ?? '');
  if (!match) return undefined;
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

/**
 * The dashboard the preview shows, as dashboard JSON would declare it: a `$dataset` variable
 * from the data source's variable support; sync state changes as annotations; events by country (time
 * series, following the dataset live), data age (stat with stale thresholds), sync status
 * (table) and events by country as a table.
 */
/** The time series panel's custom options, as its plugin's defaults would fill them in (smooth lines, a light fill). */
export const timeseriesDefaults = {
  drawStyle: 'line',
  lineInterpolation: 'smooth',
  lineWidth: 2,
  fillOpacity: 12,
  gradientMode: 'opacity',
  showPoints: 'never',
  pointSize: 4,
  spanNulls: false,
  axisPlacement: 'auto',
  axisLabel: '',
  axisBorderShow: false,
  axisCenteredZero: false,
  axisColorMode: 'text',
  scaleDistribution: { type: 'linear' },
  barAlignment: 0,
  stacking: { mode: 'none', group: 'A' },
  thresholdsStyle: { mode: 'off' },
  hideFrom: { legend: false, tooltip: false, viz: false },
  insertNulls: false,
};

export function buildDashboard(datasource: DataSourceRef, staleAfterSeconds: number): DashboardModel {
  return {
    uid: 'livesync-preview',
    title: 'LiveSync — preview',
    timezone: 'browser',
    annotations: [
      {
        name: 'Sync state changes',
        enable: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        datasource,
        target: {
          refId: 'Anno',
          kind: 'annotations',
          dataset: '$dataset',
        } as LiveSyncTarget,
      } as AnnotationQuery,
    ],
    panels: [
      {
        id: panelIds.eventsByCountry,
        title: 'Events by country',
        description:
          'count by country, following the dataset live; failures, resyncs and pauses as annotated regions',
        type: 'timeseries',
        gridPos: { x: 0, y: 0, w: 16, h: 9 },
        annotations: true,
        targets: [
          {
            refId: 'A',
            datasource,
            kind: 'metrics',
            dataset: '$dataset',
            aggregations: ['count'],
            groupBy: ['country'],
            format: 'timeseries',
            live: true,
          },
        ],
        fieldConfig: {
          defaults: { custom: timeseriesDefaults, color: { mode: 'palette-classic' } },
          overrides: [],
        },
      },
      {
        id: panelIds.dataAge,
        title: 'Data age',
        description: `seconds since the last successful sync; red from staleAfter (${staleAfterSeconds} s)`,
        type: 'stat',
        gridPos: { x: 16, y: 0, w: 8, h: 9 },
        statFields: '/^age_seconds$/',
        targets: [{ refId: 'A', datasource, kind: 'freshness', dataset: '$dataset' }],
        fieldConfig: {
          defaults: {
            unit: 's',
            decimals: 0,
            thresholds: staleThresholds(staleAfterSeconds),
            color: { mode: 'thresholds' },
          },
          overrides: [],
        },
      },
      {
        id: panelIds.eventsTable,
        title: 'Events by country per hour',
        description: 'count and sum(amount) by country, one row per hour',
        type: 'table',
        gridPos: { x: 0, y: 9, w: 12, h: 9 },
        interval: '1h',
        targets: [
          {
            refId: 'A',
            datasource,
            kind: 'metrics',
            dataset: '$dataset',
            aggregations: ['count', 'sum(amount)'],
            groupBy: ['country'],
            format: 'table',
            // Refreshed with the dashboard only: a per-hour table does not need to follow changes.
            live: false,
          },
        ],
        fieldConfig: {
          defaults: { custom: { align: 'auto', cellOptions: { type: 'auto' } } },
          overrides: [],
        },
      },
      {
        id: panelIds.syncStatus,
        title: 'Sync status',
        description: 'every dataset and how its syncs go',
        type: 'table',
        gridPos: { x: 12, y: 9, w: 12, h: 9 },
        targets: [{ refId: 'A', datasource, kind: 'status' }],
        fieldConfig: {
          defaults: { custom: { align: 'auto', cellOptions: { type: 'auto' } } },
          overrides: [],
        },
      },
    ],
  };
}
