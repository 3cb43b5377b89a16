import { Gauge } from 'prom-client';
import { PostgresCdcSource, type SlotStats } from '../sources/postgres-cdc';
import type { SyncManager } from '../sync/manager';
import type { Metrics } from './metrics';

/**
 * The replication slots of `mode: cdc` datasets, as sampled on their heartbeat: how far each
 * slot is behind the server's WAL, and how much WAL the server keeps for it (the alert
 * `livesync-replication-wal-retained` fires on the latter: a slot that stops moving fills the
 * upstream's disk).
 */
export function instrumentReplication(sync: SyncManager, metrics: Metrics): void {
  const slots = [...sync.engines.values()].flatMap((engine) =>
    engine.source instanceof PostgresCdcSource ? [{ dataset: engine.spec.name, source: engine.source }] : [],
  );
  if (slots.length === 0) return;
  const gauge = ({
    name,
    help,
    value,
  }: {
    name: string;
    help: string;
    value: (stats: SlotStats) => number;
  }) =>
    new Gauge({
      name,
      help,
      labelNames: ['dataset', 'slot'] as const,
      registers: [metrics.registry],
      collect() {
        this.reset();
        for (const { dataset, source } of slots) {
          const stats = source.slotStats();
          if (stats) this.set({ dataset, slot: source.slot }, value(stats));
        }
      },
    });
  gauge({
    name: 'livesync_replication_slot_lag_bytes',
    help: "Bytes of WAL written since the position the dataset's replication slot last confirmed.",
    value: (stats) => stats.lagBytes,
  });
  gauge({
    name: 'livesync_replication_slot_retained_wal_bytes',
    help: "Bytes of WAL the upstream keeps for the dataset's replication slot.",
    value: (stats) => stats.retainedBytes,
  });
}
