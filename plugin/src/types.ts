import type { DataQuery, DataSourceJsonData } from '@grafana/data';
import type { AnnotationKind } from './api';

/**
 * What a query asks the service for. `annotations` is the annotation editor's own kind: the
 * plugin answers it from `/api/annotations`, the query editor never offers it.
 */
export type QueryKind = 'metrics' | 'freshness' | 'status' | 'annotations';

export type QueryFormat = 'timeseries' | 'table';

export interface LiveSyncQuery extends DataQuery {
  /** Defaults to `metrics`. */
  kind?: QueryKind;
  /** Required for metrics; for freshness, status and annotations an empty dataset means all of them. */
  dataset?: string;
  /** `count`, `sum(amount)`, `avg(duration_ms)`, `min(x)`, `max(x)`, `distinct(user_id)`. */
  aggregations?: string[];
  /** Dimensions to group by. */
  groupBy?: string[];
  /** Dimension → the values to keep. */
  filters?: Record<string, string[]>;
  format?: QueryFormat;
  /**
   * Annotations only: the state changes to draw as regions (failures until recovery, resyncs
   * after a store loss, pauses in syncing). Unset means all of them.
   */
  annotationKinds?: AnnotationKind[];
  /** Annotations only: also mark sync runs that applied at least this many records. Unset: none. */
  minRecords?: number;
  /**
   * Metrics only: while the panel's range ends at now, follow the dataset's changes (over
   * Grafana Live, or the service's server-sent events) instead of waiting for the next refresh.
   * Unset means on, when the data source's `liveEnabled` allows live updates at all.
   */
  live?: boolean;
}

export const DEFAULT_QUERY: Partial<LiveSyncQuery> = {
  kind: 'metrics',
  aggregations: ['count'],
  format: 'timeseries',
};

export const DEFAULT_ANNOTATION_QUERY: Partial<LiveSyncQuery> = { kind: 'annotations' };

/** `jsonData`: everything here is visible to every viewer of the data source. */
export interface LiveSyncOptions extends DataSourceJsonData {
  /** The service's root URL as Grafana's server (the plugin's backend, and the proxy route) reaches it. */
  url?: string;
  /** Live updates for this data source's panels; `false` turns them off (and the per-query toggle with them). */
  liveEnabled?: boolean;
}

/** `secureJsonData`: write-only from the browser; the proxy injects it as a bearer token. */
export interface LiveSyncSecureOptions {
  apiKey?: string;
}

export type VariableQueryType = 'datasets' | 'dimensions' | 'values';

/** A template variable's query, as the variable editor stores it. */
export interface LiveSyncVariableQuery extends DataQuery {
  type: VariableQueryType;
  dataset?: string;
  dimension?: string;
}
