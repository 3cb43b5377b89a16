import type { LiveSyncQuery } from '../../src/types';
import type { ExpectedRequest, Reply } from './backendSrv';

/** The data source the fixtures make (fixtures.ts): its ref, as DataSourceWithBackend sends it. */
const REF = { type: 'livesync-datasource', uid: 'ls-uid' };

export interface DsQueryOptions {
  requestId: string;
  from: number;
  to: number;
  intervalMs: number;
  maxDataPoints: number;
  /** The queries as the plugin's backend gets them: template variables applied. */
  queries: LiveSyncQuery[];
  /** Headers besides the plugin and data source ids. */
  headers?: Record<string, string>;
}

/** The `/api/ds/query` request DataSourceWithBackend sends for these queries (Grafana's shape). */
export function dsQuery(o: DsQueryOptions): ExpectedRequest {
  return {
    method: 'POST',
    url: `/api/ds/query?ds_type=livesync-datasource&requestId=${o.requestId}`,
    data: {
      queries: o.queries.map((q) => ({
        ...q,
        datasource: REF,
        datasourceId: 7,
        intervalMs: o.intervalMs,
        maxDataPoints: o.maxDataPoints,
      })),
      from: String(o.from),
      to: String(o.to),
    },
    headers: { 'X-Plugin-Id': REF.type, 'X-Datasource-Uid': REF.uid, ...o.headers },
  };
}

export type RefResult = unknown[] | { error: string; status: number };

/**
 * Grafana's `/api/ds/query` answer: `{results: {refId: {status, frames} | {status, error}}}`,
 * 200 when every query succeeded, else 400 with the same body.
 */
export function dsAnswer(results: Record<string, RefResult>): Reply {
  let failed = false;
  const out = Object.fromEntries(
    Object.entries(results).map(([refId, result]) => {
      if (Array.isArray(result)) return [refId, { status: 200, frames: result }];
      failed = true;
      return [refId, { error: result.error, errorSource: 'downstream', status: result.status }];
    }),
  );
  return { status: failed ? 400 : 200, data: { results: out } };
}

/** A backend resource call as DataSourceWithBackend's getResource sends it. */
export function resourceCall(path: string, params?: Record<string, unknown>): ExpectedRequest {
  return {
    method: 'GET',
    url: `/api/datasources/uid/${REF.uid}/resources/${path}`,
    ...(params ? { params } : {}),
    headers: { 'X-Plugin-Id': REF.type, 'X-Datasource-Uid': REF.uid },
  };
}
