import { isFetchError } from '@grafana/runtime';
import type { ErrorBody } from './api';

const GRAFANA_PROXY_AUTH_FAILED = 'Authentication to data source failed';

/** A failed call to the service, in words a dashboard user can act on. */
export function describeFetchError(err: unknown, serviceUrl: string, path: string): string {
  if (!isFetchError<ErrorBody | string | undefined>(err)) {
    return `LiveSync request failed: ${err instanceof Error ? err.message : String(err)}`;
  }
  const detail = bodyMessage(err.data) ?? err.message ?? err.statusText ?? '';
  const suffix = detail ? `: ${detail}` : '';
  const where = serviceUrl || '(no URL configured)';
  // Grafana's data-source proxy turns the service's 401 into this 400, so that a wrong key
  // does not log the Grafana user out.
  if (err.status === 400 && detail === GRAFANA_PROXY_AUTH_FAILED) {
    return `LiveSync rejected the API key (Grafana: ${detail}). Check the API key in the data source settings.`;
  }
  switch (err.status) {
    case 401:
      return `LiveSync rejected the API key (401)${suffix}. Check the API key in the data source settings.`;
    case 403:
      return `Access denied (403) calling LiveSync ${path}${suffix}.`;
    case 404:
      return `LiveSync at ${where} has no ${path} (404)${suffix}. Check that the URL is the service's root.`;
    case 0:
    case 502:
    case 504:
      return `Could not reach LiveSync at ${where}${suffix}.`;
    case 503:
      return `LiveSync is unavailable (503)${suffix}.`;
    default:
      return `LiveSync answered ${err.status}${err.statusText ? ` ${err.statusText}` : ''} on ${path}${suffix}.`;
  }
}

function bodyMessage(data: ErrorBody | string | undefined): string | undefined {
  if (typeof data === 'string') return data.trim() || undefined;
  if (data && typeof data === 'object' && typeof data.message === 'string' && data.message !== '')
    return data.message;
  return undefined;
}

/**
 * A failed call to the plugin's backend (a resource), in words. The backend words the service's
 * failures itself (`{"message": …}`); anything else is Grafana failing to reach the backend.
 */
export function describeBackendError(err: unknown, path: string): string {
  if (!isFetchError<ErrorBody | string | undefined>(err)) {
    return `LiveSync request failed: ${err instanceof Error ? err.message : String(err)}`;
  }
  const detail = bodyMessage(err.data);
  if (detail) return detail;
  return `Grafana could not call the LiveSync backend for ${path} (${err.status}${err.statusText ? ` ${err.statusText}` : ''}).`;
}
