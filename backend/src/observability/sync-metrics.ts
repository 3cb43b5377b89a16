import type { SyncManager } from '../sync/manager';
import type { Metrics } from './metrics';
import { instrumentReplication } from './replication-metrics';

/** Counts what the sync engines report: runs, records, durations, errors by origin, reconciliation, lease changes; replication slots. */
export function instrumentSync(sync: SyncManager, metrics: Metrics): void {
  instrumentReplication(sync, metrics);
  for (const engine of sync.engines.values()) {
    const dataset = engine.spec.name;
    engine.lease.on('renewed', () => metrics.leaseRenewals.inc({ dataset }));
    engine.lease.on('acquired', () => metrics.leaseChanges.inc({ dataset, change: 'acquired' }));
    engine.lease.on('lost', () => metrics.leaseChanges.inc({ dataset, change: 'lost' }));
    engine.on('run', (run) => {
      const dataset = run.dataset;
      metrics.syncRuns.inc({ dataset, outcome: run.outcome });
      metrics.syncDuration.observe({ dataset }, run.durationMs / 1000);
      if (run.upserts > 0) metrics.syncRecords.inc({ dataset, op: 'upsert' }, run.upserts);
      if (run.deletes > 0) metrics.syncRecords.inc({ dataset, op: 'delete' }, run.deletes);
      if (run.error) {
        const { class: errorClass, origin } = run.error;
        metrics.syncErrors.inc({ dataset, origin, class: errorClass });
        if (origin === 'upstream') metrics.upstreamErrors.inc({ dataset, class: errorClass });
      }
    });
    engine.on('reconcile', (share) => {
      const dataset = share.dataset;
      metrics.reconcileRuns.inc({ dataset, outcome: share.outcome });
      metrics.reconcileRecords.inc({ dataset, result: 'checked' }, share.checked);
      metrics.reconcileRecords.inc({ dataset, result: 'deleted' }, share.tombstoned);
      const pass = share.completed;
      if (pass) {
        metrics.reconcilePassDuration.observe({ dataset }, pass.durationMs / 1000);
        metrics.reconcileLastPass.set({ dataset }, pass.endedAt / 1000);
      }
    });
  }
}
