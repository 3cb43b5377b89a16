import type { DatasetSpec } from '../config/dataset';
import type { DatasetStatus } from '../sync/status';
import { freshnessOf, type Freshness } from './freshness';
import type { DataFrame, FieldSchema } from './frames';

export type Cell = string | number | boolean | null;

/**
 * A dataset's row of the freshness and sync-status frames, by column name. Answers build
 * their frames from it and live freshness updates carry it, so a panel that keeps a frame up
 * to date replaces the cells of the columns it has without knowing what they mean.
 */
export function datasetRow(status: DatasetStatus, f: Freshness): Record<string, Cell> {
  return {
    dataset: status.dataset,
    state: status.state,
    last_updated: f.lastSyncAt,
    last_success: status.lastSuccessAt,
    last_attempt: status.lastAttemptAt,
    age_seconds: f.ageSeconds,
    stale: f.stale,
    incomplete: f.incomplete,
    records: status.records,
    records_applied: status.recordsApplied,
    last_batch_ms: status.lastBatchDurationMs,
    backfill_progress: status.backfill?.progress ?? null,
    last_error: status.lastError?.message ?? null,
    error_class: status.lastError?.class ?? null,
    next_attempt: status.nextAttemptAt,
    reconcile_last_pass: status.reconcile?.lastPass?.endedAt ?? null,
    reconcile_checked: status.reconcile?.lastPass?.checked ?? null,
    reconcile_deleted: status.reconcile?.lastPass?.tombstoned ?? null,
  };
}

/** What the live channels carry about a dataset's freshness: its freshness, when it was judged, and its row. */
export interface FreshnessUpdate extends Freshness {
  /** The service's clock when this was computed (epoch ms); ages grow from here. */
  at: number;
  row: Record<string, Cell>;
}

export function freshnessUpdate(spec: DatasetSpec, status: DatasetStatus, now: number): FreshnessUpdate {
  const f = freshnessOf(spec, status, now);
  return { ...f, at: now, row: datasetRow(status, f) };
}

const FRESHNESS_FIELDS: FieldSchema[] = [
  { name: 'dataset', type: 'string' },
  { name: 'last_updated', type: 'time' },
  { name: 'age_seconds', type: 'number', config: { unit: 's' } },
  { name: 'state', type: 'string' },
  { name: 'stale', type: 'boolean' },
  { name: 'incomplete', type: 'boolean' },
  { name: 'records', type: 'number' },
];

const STATUS_FIELDS: FieldSchema[] = [
  { name: 'dataset', type: 'string' },
  { name: 'state', type: 'string' },
  { name: 'last_success', type: 'time' },
  { name: 'last_attempt', type: 'time' },
  { name: 'age_seconds', type: 'number' },
  { name: 'stale', type: 'boolean' },
  { name: 'incomplete', type: 'boolean' },
  { name: 'records', type: 'number' },
  { name: 'records_applied', type: 'number' },
  { name: 'last_batch_ms', type: 'number' },
  { name: 'backfill_progress', type: 'number' },
  { name: 'last_error', type: 'string' },
  { name: 'error_class', type: 'string' },
  { name: 'next_attempt', type: 'time' },
  // The last completed search for records deleted upstream (null while none has ended or it is off).
  { name: 'reconcile_last_pass', type: 'time' },
  { name: 'reconcile_checked', type: 'number' },
  { name: 'reconcile_deleted', type: 'number' },
];

function frame(refId: string, name: string, fields: FieldSchema[], rows: Record<string, Cell>[]): DataFrame {
  return {
    schema: { refId, name, fields },
    data: { values: fields.map((f) => rows.map((row) => row[f.name] ?? null)) },
  };
}

/** One row per dataset: `age_seconds` for stat panels with stale thresholds, and every dataset's notice. */
export function freshnessFrame(refId: string, rows: { status: DatasetStatus; f: Freshness }[]): DataFrame {
  const out = frame(
    refId,
    'freshness',
    FRESHNESS_FIELDS,
    rows.map((r) => datasetRow(r.status, r.f)),
  );
  out.schema.meta = { notices: rows.flatMap((r) => (r.f.notice ? [r.f.notice] : [])) };
  return out;
}

/** The sync status table: one row per dataset. */
export function statusFrame(refId: string, rows: { status: DatasetStatus; f: Freshness }[]): DataFrame {
  return frame(
    refId,
    'sync status',
    STATUS_FIELDS,
    rows.map((r) => datasetRow(r.status, r.f)),
  );
}
