/**
 * The LiveSync service's answers as the frontend sees them: the backend's resources pass them on
 * as the service gave them, and errors as `{message}`.
 */

/** The body of a failed call: the backend's (or the service's) words. */
export interface ErrorBody {
  message?: string;
}

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

/** The state changes an annotations query draws as regions (the service's `kinds`). */
export type AnnotationKind = 'failure' | 'resync' | 'pause';
