/**
 * The sync lease and its fencing token, on a real Redis: one holder at a time, a new grant
 * only once the lease has ended (as Redis counts time), and every write of the sync path
 * refused to a holder whose lease ended, so a replica that paused past it writes nothing.
 */
import type { SourceRecord } from '../../src/sources/types';
import { MemoryStore } from '../../src/store/memory';
import { DatasetKeys } from '../../src/store/redis-keys';
import { LeaseLostError } from '../../src/store/types';
import { datasetSpec, redisStore, REDIS_URL } from '../helpers';
import { RedisStore } from '../../src/store/redis';
import { until } from '../integration/support';

const T0 = Date.UTC(2026, 0, 5);
const spec = datasetSpec();

/** Puts back the token a paused process would still hold in memory when it wakes up. */
function stillBelieves(store: RedisStore, token: number): void {
  (store as unknown as { datasets: Map<string, { token: string }> }).datasets.get(spec.name)!.token =
    String(token);
}

function record(id: number, amount: number): SourceRecord {
  return {
    id: String(id),
    time: T0 + id * 60_000,
    cursor: String(id),
    deleted: false,
    dims: ['US', 'mobile'],
    metrics: [amount, 10],
    distinct: [`u${id}`],
  };
}

it('grants one holder at a time; a paused holder past its TTL can write nothing once another took over', async () => {
  const a = await redisStore();
  const b = await RedisStore.connect(REDIS_URL, a.prefix);
  const keys = new DatasetKeys(a.prefix, spec.name);
  try {
    await a.store.register(spec);
    await b.register(spec);
    const first = await a.store.acquireLease(spec.name, 'replica-a', 60_000);
    expect(first).toMatchObject({ granted: true, holder: 'replica-a' });
    // Asking again extends the holder's own grant; another replica is told who holds it.
    expect(await a.store.acquireLease(spec.name, 'replica-a', 60_000)).toMatchObject({ token: first.token });
    expect(await b.acquireLease(spec.name, 'replica-b', 1_000)).toMatchObject({
      granted: false,
      holder: 'replica-a',
      token: first.token,
    });
    const { generation } = await a.store.resetDataset(spec.name);
    const applied = await a.store.applyBatch(spec.name, {
      generation,
      records: [record(1, 5), record(2, 7)],
      position: { cursor: '2', id: '2' },
      cutoffMs: 0,
    });
    expect(applied).toMatchObject({ applied: true, upserts: 2 });
    // Deny by default: a store never granted the lease writes nothing.
    await expect(
      b.applyBatch(spec.name, { generation, records: [record(3, 1)], position: null, cutoffMs: 0 }),
    ).rejects.toBeInstanceOf(LeaseLostError);

    // replica-a's last renewal is a short one, then it stops renewing (a SIGSTOP, a long GC): its
    // lease ends on Redis's clock. (Long grants above: resetting scans the shared server's keys.)
    expect(await a.store.renewLease(spec.name, 200)).toBe(true);
    await until(async () => (await a.store.redis.exists(keys.lease)) === 0, 10_000, 'the lease to expire');
    const second = await b.acquireLease(spec.name, 'replica-b', 60_000);
    expect(second).toMatchObject({ granted: true, holder: 'replica-b' });
    expect(second.token).toBeGreaterThan(first.token);
    const held = await a.store.redis.hgetall(keys.state);

    // replica-a wakes up and carries on as if it still held the lease: every write is refused.
    const writes: [string, () => Promise<unknown>][] = [
      [
        'applyBatch',
        () =>
          a.store.applyBatch(spec.name, {
            generation,
            records: [record(1, 500)],
            position: { cursor: '9', id: '9' },
            cutoffMs: 0,
          }),
      ],
      ['resetDataset', () => a.store.resetDataset(spec.name)],
      [
        'writeResync',
        () => a.store.writeResync(spec.name, generation, { since: 1, applied: 0, remaining: null }),
      ],
      ['trim', () => a.store.trim(spec.name, T0 + 3_600_000)],
      [
        'appendEvent',
        () => a.store.appendEvent(spec.name, { startedAt: 1, endedAt: 2, outcome: 'success', records: 1 }),
      ],
      [
        'appendRegion',
        () => a.store.appendRegion(spec.name, { kind: 'pause', startedAt: 1, endedAt: 2, count: 0 }),
      ],
      ['writeStatus', () => a.store.writeStatus(spec.name, { state: 'idle' })],
      ['clearResyncRequest', () => a.store.clearResyncRequest(spec.name)],
    ];
    for (const [name, write] of writes) {
      // A refusal makes the store forget the token; a paused process still holds it when it wakes.
      stillBelieves(a.store, first.token);
      const outcome = await write().then(
        () => 'written',
        (err: unknown) => (err instanceof LeaseLostError ? 'refused' : String(err)),
      );
      expect({ name, outcome }).toEqual({ name, outcome: 'refused' });
    }
    expect(await a.store.redis.hgetall(keys.state)).toEqual(held);
    expect(await a.store.redis.llen(keys.events)).toBe(0);
    expect(await a.store.redis.llen(keys.regions)).toBe(0);
    expect(await a.store.redis.exists(keys.status)).toBe(0);
    expect(await a.store.renewLease(spec.name, 60_000)).toBe(false);

    // The holder writes; giving the lease up lets another take it at once, with a higher token.
    await b.writeStatus(spec.name, { state: 'idle' });
    await b.releaseLease(spec.name);
    const third = await a.store.acquireLease(spec.name, 'replica-a', 60_000);
    expect(third).toMatchObject({ granted: true });
    expect(third.token).toBeGreaterThan(second.token);
    await expect(b.writeStatus(spec.name, { state: 'late' })).rejects.toBeInstanceOf(LeaseLostError);
  } finally {
    await b.close();
    await a.cleanup();
  }
});

it('the memory store grants the lease to whoever asks: one process, nobody to fence out', async () => {
  const store = new MemoryStore();
  await store.register(spec);
  const grant = await store.acquireLease(spec.name, 'replica-a');
  expect(grant).toMatchObject({ granted: true, holder: 'replica-a', ttlMs: Infinity });
  expect(await store.renewLease(spec.name)).toBe(true);
  expect(await store.readLease(spec.name)).toMatchObject({ holder: 'replica-a', token: grant.token });
  await store.releaseLease(spec.name);
  expect(await store.readLease(spec.name)).toBeNull();
});
