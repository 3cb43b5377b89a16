import type { TestDataSourceResponse } from '@grafana/data';
import type { DatasetHealth, HealthResponse, StoreCheck } from './api';

/** Seconds as a person says them: 45s, 12m, 3h 5m, 2d 4h. */
export function formatAge(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return 'never';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d}d ${h % 24}h` : `${d}d`;
}

function describeDataset(name: string, health: DatasetHealth): string {
  const because = health.message ? `: ${health.message}` : '';
  switch (health.status) {
    case 'stale':
      return health.ageSeconds === null
        ? `${name} is stale (never synced)${because}`
        : `${name} is stale (last synced ${formatAge(health.ageSeconds)} ago)${because}`;
    case 'failing':
      return `${name} is failing${because}`;
    default:
      return `${name} is ${health.status}${because}`;
  }
}

/** The store in a few words: which one, and what that means for the data. */
function describeStore(store: StoreCheck | undefined): string {
  if (!store) return 'store: unknown';
  if (store.kind === 'memory')
    return 'store: embedded memory, so its data is lost when the service restarts and is synced again';
  return `store: Redis${store.url ? ` at ${store.url}` : ''}, reachable`;
}

/** "Save & test" in words: what works, and what does not, by name, starting with the store it really uses. */
export function describeHealth(health: HealthResponse): TestDataSourceResponse {
  const store = health.checks?.store;
  const datasets = Object.entries(health.checks?.datasets ?? {});
  if (health.status === 'down' || store?.status === 'down') {
    return {
      status: 'error',
      message: `LiveSync is reachable but its store is down: ${store?.message ?? 'no answer'}. Panels cannot load until it is back.`,
    };
  }
  const connected = `Connected to LiveSync (${describeStore(store)})`;
  const troubled = datasets.filter(([, d]) => d.status === 'stale' || d.status === 'failing');
  if (troubled.length > 0) {
    const list = troubled.map(([name, d]) => describeDataset(name, d)).join('; ');
    const noun = troubled.length === 1 ? 'dataset needs' : 'datasets need';
    return {
      status: 'warning',
      message: `${connected}, but ${troubled.length} ${noun} attention: ${list}.`,
    };
  }
  if (datasets.length === 0) {
    return {
      status: 'success',
      message: `${connected}. The service has no datasets yet: declare one in its config file.`,
    };
  }
  const fresh = datasets.filter(([, d]) => d.status === 'ok').map(([name]) => name);
  const busy = datasets.filter(([, d]) => d.status !== 'ok').map(([name, d]) => describeDataset(name, d));
  const parts = [
    fresh.length
      ? `${fresh.length} dataset${fresh.length === 1 ? '' : 's'} up to date (${fresh.join(', ')})`
      : '',
    busy.join('; '),
  ].filter(Boolean);
  return { status: 'success', message: `${connected}; ${parts.join('; ')}.` };
}
