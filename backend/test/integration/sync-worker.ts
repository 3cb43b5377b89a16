/**
 * A real sync in a process of its own, for the crash test to SIGKILL: syncs the table named
 * by LIVESYNC_TABLE into Redis (LIVESYNC_REDIS_URL, key prefix LIVESYNC_PREFIX) in batches of
 * LIVESYNC_BATCH, and tells its parent over IPC after every committed batch.
 *
 * With LIVESYNC_PIECE_COST the store cuts batches into small pieces (each batch then goes
 * through a journal); with LIVESYNC_PAUSE_AT=n as well, the worker stops for good after the
 * n-th step of a journal that is not a batch's last (a stored piece, or an applied piece
 * before the commit) and says so: the parent kills it there, between two pieces of a batch.
 *
 *   node -r @swc-node/register test/integration/sync-worker.ts   (started with fork())
 */
import { RedisStore, type JournalStep, type RedisStoreOptions } from '../../src/store/redis';
import { eventsSpec, pgEngine, requiredEnv, runWorker } from './support';

export type WorkerMessage =
  | { kind: 'batch'; batches: number; version: number }
  | { kind: 'paused'; batches: number; step: JournalStep }
  | { kind: 'done'; batches: number }
  | { kind: 'error'; message: string };

function send(message: WorkerMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  let batches = 0;
  const options: RedisStoreOptions = {};
  if (process.env.LIVESYNC_PIECE_COST) {
    options.pieceLimits = { cost: Number(process.env.LIVESYNC_PIECE_COST) };
    let left = Number(process.env.LIVESYNC_PAUSE_AT ?? Infinity);
    options.onStep = async (step) => {
      const inside = step.kind === 'stored' || (step.kind === 'applied' && step.index < step.pieces - 1);
      if (!inside || --left > 0) return;
      send({ kind: 'paused', batches, step });
      await new Promise(() => undefined);
    };
  }
  const store = await RedisStore.connect(
    requiredEnv('LIVESYNC_REDIS_URL'),
    requiredEnv('LIVESYNC_PREFIX'),
    options,
  );
  const spec = eventsSpec(requiredEnv('LIVESYNC_TABLE'), {
    batchSize: Number(requiredEnv('LIVESYNC_BATCH')),
  });
  const sync = pgEngine(spec, store);
  sync.engine.on('change', (change) => send({ kind: 'batch', batches: ++batches, version: change.version }));
  await sync.syncOnce();
  send({ kind: 'done', batches });
  await sync.close();
  await store.close();
  process.disconnect?.();
}

runWorker(main);
