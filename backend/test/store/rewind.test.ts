/**
 * A store that comes back behind what it acknowledged (a failover to a replica that lacked the
 * last writes, a restart from an older snapshot) must not let a sync carry on from a position
 * it no longer holds: the next batch is refused as a conflict, and the engine reads on from the
 * stored position (integration/cluster.test.ts kills a real master).
 */
import type { SourceRecord } from '../../src/sources/types';
import { DatasetKeys } from '../../src/store/redis-keys';
import { datasetSpec, redisStore, registerLeased } from '../helpers';

const T0 = Date.UTC(2026, 0, 5);

function record(id: number): SourceRecord {
  return {
    id: String(id),
    time: T0 + id * 1000,
    cursor: String(id),
    deleted: false,
    dims: ['US', 'mobile'],
    metrics: [1, 10],
    distinct: [`u${id}`],
  };
}

it('refuses a batch planned on a state older than the one it committed, once', async () => {
  const { store, prefix, cleanup } = await redisStore();
  try {
    const spec = datasetSpec();
    await registerLeased(store, spec);
    const { generation } = await store.resetDataset(spec.name);
    const batch = (id: number) => ({
      generation,
      records: [record(id)],
      position: { cursor: String(id), id: String(id) },
      cutoffMs: 0,
    });
    expect((await store.applyBatch(spec.name, batch(1))).applied).toBe(true);
    const state = new DatasetKeys(prefix, spec.name).state;
    const before = await store.redis.hgetall(state);
    expect((await store.applyBatch(spec.name, batch(2))).applied).toBe(true);
    // The failover: the state of batch 1 comes back, batch 2's commit is gone.
    await store.redis.hset(state, before);

    expect(await store.applyBatch(spec.name, batch(3))).toEqual({ applied: false, reason: 'conflict' });
    // The engine reads the stored position (batch 1's) and goes on from there.
    expect((await store.readState(spec.name))?.position).toEqual({ cursor: '1', id: '1' });
    expect((await store.applyBatch(spec.name, batch(2))).applied).toBe(true);
  } finally {
    await cleanup();
  }
});
