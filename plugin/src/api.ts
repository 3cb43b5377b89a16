/**
 * The LiveSync service's HTTP contract as the plugin sees it: request and response bodies of
 * the routes it calls through Grafana's data-source proxy.
 */
import type { DataFrameJSON } from '@grafana/data';
import type { QueryFormat } from './types';

export type ServiceQueryKind = 'metrics' | 'freshness' | 'status';

export interface ServiceQuery {
  refId: string;
  /** Omitted for metrics, the service's default. */
  kind?: ServiceQueryKind;
  dataset?: string;
  aggregations?: string[];
  groupBy?: string[];
  filters?: Record<string, string[]>;
  format?: QueryFormat;
}

export interface QueryRequestBody {
  range: { from: number; to: number };
  intervalMs: number;
  maxDataPoints: number;
  queries: ServiceQuery[];
}

export type RefIdResult = { frames: DataFrameJSON[] } | { error: string; status: number };

export interface QueryResponseBody {
  results: Record<string, RefIdResult>;
}

/** The body of a 4xx/5xx answer; `results` comes with a query whose every part failed. */
export interface ErrorBody {
  message?: string;
  results?: Record<string, RefIdResult>;
}

export type SyncState = 'ok' | 'stale' | 'failing' | 'resyncing' | 'syncing';

export interface DatasetStatus {
  state: string;
  lastSuccessAt: string | number | null;
  ageSeconds: number | null;
  stale: boolean;
  lastError: { message: string; class: string; at: string | number } | null;
  records: number;
}

export interface DatasetInfo {
  name: string;
  source: { kind: string };
  dimensions: string[];
  metrics: string[];
  distinct: string[];
  resolution: string;
  staleAfter: string;
  retention: string;
  status?: DatasetStatus;
}

export interface DatasetsResponse {
  datasets: DatasetInfo[];
}

export interface ValuesResponse {
  values: string[];
}

/** The state changes `/api/annotations` draws as regions (its `kinds` parameter). */
export type AnnotationKind = 'failure' | 'resync' | 'pause';

export interface AnnotationRecord {
  /** epoch ms */
  time: number;
  timeEnd?: number;
  title: string;
  text: string;
  tags: string[];
}

/** The store the service really uses, and whether it answers. */
export interface StoreCheck {
  kind: 'memory' | 'redis';
  status: 'ok' | 'down';
  /** Redis only, without its password. */
  url?: string;
  message: string;
}

export interface DatasetHealth {
  status: SyncState;
  ageSeconds: number | null;
  message?: string;
}

export interface HealthResponse {
  status: 'ok' | 'degraded' | 'down';
  checks: {
    store: StoreCheck;
    datasets: Record<string, DatasetHealth>;
  };
}
