/**
 * A real sync in a process of its own, for the crash test to SIGKILL: syncs the table named
 * by LIVESYNC_TABLE into Redis (LIVESYNC_REDIS_URL, key prefix LIVESYNC_PREFIX) in batches of
 * LIVESYNC_BATCH, and tells its parent over IPC after every committed batch.
 *
 *   node -r @swc-node/register test/integration/sync-worker.ts   (started with fork())
 */
import { RedisStore } from '../../src/store/redis';
import { eventsSpec, pgEngine } from './support';

export type WorkerMessage =
  | { kind: 'batch'; batches: number; version: number }
  | { kind: 'done'; batches: number }
  | { kind: 'error'; message: string };

function send(message: WorkerMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const env = (name: string) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set`);
    return value;
  };
  const store = await RedisStore.connect(env('LIVESYNC_REDIS_URL'), env('LIVESYNC_PREFIX'));
  const spec = eventsSpec(env('LIVESYNC_TABLE'), { batchSize: Number(env('LIVESYNC_BATCH')) });
  const sync = pgEngine(spec, store);
  let batches = 0;
  sync.engine.on('change', (change) => send({ kind: 'batch', batches: ++batches, version: change.version }));
  await sync.syncOnce();
  send({ kind: 'done', batches });
  await sync.close();
  await store.close();
  process.disconnect?.();
}

main().catch((err: unknown) => {
  send({ kind: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exitCode = 1;
  process.disconnect?.();
});
