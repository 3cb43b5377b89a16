/**
 * A CDC sync in a process of its own, for cdc.test.ts to SIGKILL mid-stream: streams the table
 * LIVESYNC_TABLE of the cluster at LIVESYNC_PG_URL (slot LIVESYNC_SLOT) into Redis
 * (LIVESYNC_REDIS_URL, key prefix LIVESYNC_PREFIX) in batches of LIVESYNC_BATCH, and tells its
 * parent after every committed batch, and when a run has caught up. It never stops by itself.
 *
 *   node -r @swc-node/register test/integration/cdc-worker.ts   (started with fork())
 */
import { RedisStore } from '../../src/store/redis';
import { cdcEngine, cdcSpec } from './cdc-support';
import { requiredEnv, runWorker } from './support';

export type CdcWorkerMessage =
  | { kind: 'batch'; batches: number }
  | { kind: 'caught-up'; batches: number }
  | { kind: 'error'; message: string };

function send(message: CdcWorkerMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  let batches = 0;
  const store = await RedisStore.connect(requiredEnv('LIVESYNC_REDIS_URL'), requiredEnv('LIVESYNC_PREFIX'));
  const spec = cdcSpec(requiredEnv('LIVESYNC_TABLE'), requiredEnv('LIVESYNC_PG_URL'), {
    batchSize: Number(requiredEnv('LIVESYNC_BATCH')),
    slot: requiredEnv('LIVESYNC_SLOT'),
  });
  const sync = await cdcEngine(spec, store);
  sync.engine.on('change', () => send({ kind: 'batch', batches: ++batches }));
  sync.engine.on('run', (run) => {
    if (run.outcome === 'success') send({ kind: 'caught-up', batches });
  });
}

runWorker(main);
