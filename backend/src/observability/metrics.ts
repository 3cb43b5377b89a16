import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Label values beyond this many distinct dashboards are folded into `other`. */
const DASHBOARD_LABELS_MAX = 100;

/**
 * Every metric the service exports, on its own registry. The names are a contract:
 * provisioned dashboards and alert rules query them.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly dashboards = new Set<string>();

  readonly syncRuns = new Counter({
    name: 'livesync_sync_runs_total',
    help: 'Sync runs by outcome.',
    labelNames: ['dataset', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly syncRecords = new Counter({
    name: 'livesync_sync_records_total',
    help: 'Records applied by sync, by operation.',
    labelNames: ['dataset', 'op'] as const,
    registers: [this.registry],
  });
  readonly syncDuration = new Histogram({
    name: 'livesync_sync_duration_seconds',
    help: 'Duration of sync runs.',
    labelNames: ['dataset'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly lastSuccess = new Gauge({
    name: 'livesync_dataset_last_success_timestamp_seconds',
    help: 'When the dataset last synced successfully (Unix time).',
    labelNames: ['dataset'] as const,
    registers: [this.registry],
  });
  readonly age = new Gauge({
    name: 'livesync_dataset_age_seconds',
    help: 'Seconds since the dataset last synced successfully.',
    labelNames: ['dataset'] as const,
    registers: [this.registry],
  });
  readonly staleThreshold = new Gauge({
    name: 'livesync_dataset_stale_threshold_seconds',
    help: "The dataset's staleAfter: older than this, its data is reported stale.",
    labelNames: ['dataset'] as const,
    registers: [this.registry],
  });
  readonly reconcileRecords = new Counter({
    name: 'livesync_reconcile_records_total',
    help: 'Records checked against the upstream by reconciliation, and those found gone upstream and removed (result: checked, deleted).',
    labelNames: ['dataset', 'result'] as const,
    registers: [this.registry],
  });
  readonly reconcileRuns = new Counter({
    name: 'livesync_reconcile_runs_total',
    help: "Sync runs' shares of reconciliation by outcome (success, failure).",
    labelNames: ['dataset', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly reconcilePassDuration = new Histogram({
    name: 'livesync_reconcile_pass_duration_seconds',
    help: 'Duration of completed reconciliation passes, from start to end, across sync runs.',
    labelNames: ['dataset'] as const,
    buckets: [1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 21600, 86400],
    registers: [this.registry],
  });
  readonly reconcileLastPass = new Gauge({
    name: 'livesync_reconcile_last_pass_timestamp_seconds',
    help: 'When the last reconciliation pass completed (Unix time).',
    labelNames: ['dataset'] as const,
    registers: [this.registry],
  });
  readonly cacheRequests = new Counter({
    name: 'livesync_cache_requests_total',
    help: 'Cache lookups by layer (response, http) and result (hit, miss, bypass, not_modified).',
    labelNames: ['layer', 'result'] as const,
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: 'livesync_http_requests_total',
    help: 'HTTP requests by route template, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'livesync_http_request_duration_seconds',
    help: 'HTTP request duration by route template and method.',
    labelNames: ['route', 'method'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly upstreamErrors = new Counter({
    name: 'livesync_upstream_errors_total',
    help: 'Sync runs failed by the upstream itself, by error class (transient, permanent).',
    labelNames: ['dataset', 'class'] as const,
    registers: [this.registry],
  });
  readonly syncErrors = new Counter({
    name: 'livesync_sync_errors_total',
    help: 'Failed sync runs by origin (upstream, config, store, internal) and error class.',
    labelNames: ['dataset', 'origin', 'class'] as const,
    registers: [this.registry],
  });
  readonly requestErrors = new Counter({
    name: 'livesync_request_errors_total',
    help: 'Requests answered 5xx, by route template and origin (store, internal).',
    labelNames: ['route', 'origin'] as const,
    registers: [this.registry],
  });
  readonly queries = new Counter({
    name: 'livesync_queries_total',
    help: 'Queries answered, by dataset and kind (metrics, freshness, status).',
    labelNames: ['dataset', 'kind'] as const,
    registers: [this.registry],
  });
  readonly livePushes = new Counter({
    name: 'livesync_live_pushes_total',
    help: 'Pushes to Grafana Live by what they carry (change, freshness) and outcome (success, failure).',
    labelNames: ['channel', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly sseClients = new Gauge({
    name: 'livesync_sse_clients',
    help: 'Open server-sent-event streams.',
    registers: [this.registry],
  });
  readonly dashboardQueries = new Counter({
    name: 'livesync_dashboard_queries_total',
    help: `Queries by the dashboard UID Grafana sends (X-Dashboard-Uid); past ${DASHBOARD_LABELS_MAX} dashboards, "other".`,
    labelNames: ['dashboard'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'livesync_' });
  }

  /** A bounded label for a dashboard UID: unknown UIDs past the cap count as `other`. */
  dashboardLabel(uid: string | undefined): string {
    if (!uid) return 'none';
    if (this.dashboards.has(uid)) return uid;
    if (this.dashboards.size >= DASHBOARD_LABELS_MAX || !/^[A-Za-z0-9_-]{1,64}$/.test(uid)) return 'other';
    this.dashboards.add(uid);
    return uid;
  }
}
