import type { DatasetSpec } from '../../src/config/dataset';
import { PostgresCdcSource } from '../../src/sources/postgres-cdc';
import type { Store } from '../../src/store/types';
import { SyncEngine, type EngineOptions } from '../../src/sync/engine';
import { eventsSpec, silent, type PgSchema } from './support';

/** The events dataset of issue 2 over change data capture, on the cluster at `url`. */
export function cdcSpec(
  table: string,
  url: string,
  options: { batchSize?: number; heartbeat?: string; slot?: string } = {},
): DatasetSpec {
  const spec = eventsSpec(table, { batchSize: options.batchSize ?? 5000 });
  if (spec.source.kind !== 'postgres') throw new Error('a postgres dataset is needed');
  spec.source = {
    ...spec.source,
    url,
    mode: 'cdc',
    cdc: {
      heartbeat: options.heartbeat ?? '100ms',
      ...(options.slot ? { slot: options.slot, publication: options.slot } : {}),
    },
  };
  return spec;
}

/** An engine over a PostgresCdcSource, started; `close` stops both. */
export async function cdcEngine(spec: DatasetSpec, store: Store, options: EngineOptions = {}) {
  if (spec.source.kind !== 'postgres') throw new Error('a postgres dataset is needed');
  const source = new PostgresCdcSource(spec, spec.source);
  const engine = new SyncEngine(spec, source, store, silent, {
    backoff: { initialMs: 20, maxMs: 200 },
    ...options,
  });
  await store.register(spec);
  engine.start();
  return {
    source,
    engine,
    async close(): Promise<void> {
      await engine.stop();
      await source.close();
    },
  };
}

/** The slot's confirmed position and the server's current WAL position, as numbers. */
export async function slotPosition(
  schema: PgSchema,
  slot: string,
): Promise<{ confirmed: bigint | null; current: bigint }> {
  const [row] = await schema.sql<{ confirmed: string | null; current: string }>(
    `SELECT (SELECT (confirmed_flush_lsn - '0/0')::text FROM pg_replication_slots WHERE slot_name = $1) AS confirmed,
            (pg_current_wal_lsn() - '0/0')::text AS current`,
    [slot],
  );
  return {
    confirmed: row!.confirmed === null ? null : BigInt(row!.confirmed),
    current: BigInt(row!.current),
  };
}
