/**
 * Issue 10: Redis applies a batch in guarded pieces. A replayed piece, a second process
 * finishing the same journal, a write planned against a state that moved on, and a journal
 * whose writer died before it was complete must each count nothing twice and lose nothing.
 */
import { DAY_MS } from '../../src/config/dataset';
import type { SourceRecord } from '../../src/sources/types';
import { RedisStore, type JournalStep, type RedisStoreOptions } from '../../src/store/redis';
import { DatasetKeys } from '../../src/store/redis-keys';
import { datasetSpec, prng, REDIS_URL, redisStore, registerLeased } from '../helpers';
import { referenceCells, storedCells } from './reference';

const T0 = Date.UTC(2026, 0, 5);
const spec = datasetSpec();
/** Small pieces: every batch below goes through a journal of many pieces. */
const SMALL: RedisStoreOptions['pieceLimits'] = { cost: 200, bytes: 2048 };

function records(seed: number, from: number, count: number): SourceRecord[] {
  const random = prng(seed);
  return Array.from({ length: count }, (_, i) => ({
    id: String(from + i),
    time: T0 + Math.floor(random() * DAY_MS),
    cursor: String(from + i),
    deleted: false,
    dims: [['US', 'DE', 'FR'][Math.floor(random() * 3)]!, ['mobile', 'desktop'][Math.floor(random() * 2)]!],
    metrics: [random() < 0.1 ? null : Math.round(random() * 1000), Math.round(random() * 50)],
    distinct: [`u${Math.floor(random() * 40)}`],
  }));
}

/** Two stores on one prefix: `a` stops where `pause` says, `b` is another process. */
async function pair(pause: (step: JournalStep) => Promise<void> | void) {
  const a = await redisStore({ pieceLimits: SMALL, onStep: pause });
  const b = await RedisStore.connect(REDIS_URL, a.prefix, { pieceLimits: SMALL });
  await registerLeased(a.store, spec);
  await registerLeased(b, spec);
  const { generation } = await a.store.resetDataset('events');
  const keys = new DatasetKeys(a.prefix, 'events');
  return {
    a: a.store,
    b,
    keys,
    generation,
    cleanup: async () => {
      await b.close();
      await a.cleanup();
    },
  };
}

async function expectHolds(store: RedisStore, live: SourceRecord[]): Promise<void> {
  expect(await storedCells(store, spec, T0, T0 + 2 * DAY_MS)).toEqual(referenceCells(spec, live));
  expect((await store.readState('events'))!.records).toBe(live.length);
}

it('applies each piece once: a replay of an applied piece, and of a closed journal, writes nothing', async () => {
  let stopAt: number | null = 3;
  let journal: string | null = null;
  const { a, b, keys, generation, cleanup } = await pair(async (step) => {
    if (step.kind === 'applied' && step.index === stopAt) {
      stopAt = null;
      journal = await a.redis.hget(keys.state, 'journal');
      throw new Error('stop');
    }
  });
  try {
    const batch = records(1, 0, 300);
    await expect(
      a.applyBatch('events', {
        generation,
        records: batch,
        position: { cursor: 'c1', id: '0' },
        cutoffMs: 0,
      }),
    ).rejects.toThrow('stop');
    expect(journal).not.toBeNull();
    // Pieces 0..3 are applied: replaying any of them is refused, the next one is not skipped.
    for (let i = 0; i <= 3; i++)
      expect(await b.redis.livesyncPiece(keys.state, keys.journal, journal!, i)).toBe('done');
    expect(await b.redis.livesyncPiece(keys.state, keys.journal, journal!, 5)).toBe('ahead');
    await b.finishPending('events');
    expect(await b.redis.hget(keys.state, 'journal')).toBeNull();
    expect(await b.redis.livesyncPiece(keys.state, keys.journal, journal!, 4)).toBe('gone');
    await expectHolds(b, batch);
    expect(await b.readState('events')).toMatchObject({ version: 1, position: { cursor: 'c1', id: '0' } });
  } finally {
    await cleanup();
  }
});

it('lets a second process finish a journal while its writer still runs; the writer then reports it applied', async () => {
  const first = records(2, 0, 300);
  const second = records(3, 200, 200); // updates 100 of the first batch's records
  let done = false;
  const { a, b, generation, cleanup } = await pair(async (step) => {
    if (!done && step.kind === 'applied' && step.index === 2) {
      done = true;
      // Another process arrives mid-batch: it finishes this journal before applying its own.
      const result = await b.applyBatch('events', {
        generation,
        records: second,
        position: { cursor: 'c2', id: '0' },
        cutoffMs: 0,
      });
      expect(result).toMatchObject({ applied: true, version: 2 });
    }
  });
  try {
    const result = await a.applyBatch('events', {
      generation,
      records: first,
      position: { cursor: 'c1', id: '0' },
      cutoffMs: 0,
    });
    expect(result).toMatchObject({ applied: true, version: 1, upserts: 300 });
    const live = new Map([...first, ...second].map((r) => [r.id, r]));
    await expectHolds(a, [...live.values()]);
    expect(await a.readState('events')).toMatchObject({ version: 2, position: { cursor: 'c2', id: '0' } });
  } finally {
    await cleanup();
  }
});

it('refuses a batch planned against a state that moved on, and applies nothing of it', async () => {
  const first = records(4, 0, 200);
  const second = records(5, 100, 200);
  let interleave = true;
  const { a, b, generation, cleanup } = await pair(async (step) => {
    if (interleave && step.kind === 'planned') {
      interleave = false;
      await b.applyBatch('events', {
        generation,
        records: second,
        position: { cursor: 'c2', id: '0' },
        cutoffMs: 0,
      });
    }
  });
  try {
    const result = await a.applyBatch('events', {
      generation,
      records: first,
      position: { cursor: 'c1', id: '0' },
      cutoffMs: 0,
    });
    expect(result).toEqual({ applied: false, reason: 'conflict' });
    await expectHolds(a, second);
    expect(await a.readState('events')).toMatchObject({ version: 1, position: { cursor: 'c2', id: '0' } });
  } finally {
    await cleanup();
  }
});

it('drops a journal whose writer died before storing every piece; nothing of it was applied', async () => {
  const kept = records(6, 0, 100);
  const lost = records(7, 50, 400);
  let armed = false;
  const { a, b, keys, generation, cleanup } = await pair((step) => {
    if (armed && step.kind === 'stored' && step.index < step.pieces - 1) throw new Error('died');
  });
  try {
    await a.applyBatch('events', {
      generation,
      records: kept,
      position: { cursor: 'c1', id: '0' },
      cutoffMs: 0,
    });
    armed = true;
    await expect(
      a.applyBatch('events', { generation, records: lost, position: { cursor: 'c2', id: '0' }, cutoffMs: 0 }),
    ).rejects.toThrow('died');
    const journal = await b.redis.hget(keys.state, 'journal');
    expect(journal).not.toBeNull();
    expect(await b.redis.hget(keys.state, 'jready')).toBeNull();
    await b.finishPending('events');
    expect(await b.redis.hget(keys.state, 'journal')).toBeNull();
    expect(await b.redis.exists(keys.journal)).toBe(0);
    await expectHolds(b, kept);
    expect(await b.readState('events')).toMatchObject({ version: 1, position: { cursor: 'c1', id: '0' } });
    // The dead writer's journal cannot be revived by a late piece of it.
    const token = (await b.redis.hget(keys.lease, 'token'))!;
    expect(
      await b.redis.livesyncJournal(
        keys.state,
        keys.journal,
        keys.lease,
        'add',
        generation,
        '0',
        journal!,
        99,
        0,
        0,
        1,
        token,
      ),
    ).toBe('gone');
  } finally {
    await cleanup();
  }
});

it('gives ranges under an open journal a stamp that changes with every piece, and leaves other ranges alone', async () => {
  // Records within one hour of the first day; a range on the second day is untouched.
  const batch = records(8, 0, 300).map((r) => ({ ...r, time: T0 + (r.time % 3_600_000) }));
  const inside = { from: T0, to: T0 + 3_600_000 };
  const outside = { from: T0 + DAY_MS, to: T0 + 2 * DAY_MS };
  const seen: { inside: string; outside: string }[] = [];
  let store: RedisStore | null = null;
  const { a, generation, cleanup } = await pair(async (step) => {
    if (step.kind !== 'applied' || step.index >= step.pieces - 1) return;
    seen.push({
      inside: await store!.dataStamp('events', inside.from, inside.to),
      outside: await store!.dataStamp('events', outside.from, outside.to),
    });
  });
  store = a;
  try {
    const before = {
      inside: await a.dataStamp('events', inside.from, inside.to),
      outside: await a.dataStamp('events', outside.from, outside.to),
    };
    await a.applyBatch('events', {
      generation,
      records: batch,
      position: { cursor: 'c1', id: '0' },
      cutoffMs: 0,
    });
    const after = await a.dataStamp('events', inside.from, inside.to);
    expect(seen.length).toBeGreaterThan(2);
    const stamps = [before.inside, ...seen.map((s) => s.inside), after];
    expect(new Set(stamps).size).toBe(stamps.length);
    for (const s of seen) expect(s.outside).toBe(before.outside);
    expect(await a.dataStamp('events', outside.from, outside.to)).toBe(before.outside);
  } finally {
    await cleanup();
  }
});

it('reads a state of an older layout as no state, so that the engine syncs again', async () => {
  const { a, keys, generation, cleanup } = await pair(() => undefined);
  try {
    await a.applyBatch('events', { generation, records: records(9, 0, 10), position: null, cutoffMs: 0 });
    // As the single-script store left it: the same fields, no format.
    await a.redis.hdel(keys.state, 'format');
    expect(await a.readState('events')).toBeNull();
    expect(
      await a.applyBatch('events', { generation, records: records(9, 10, 10), position: null, cutoffMs: 0 }),
    ).toEqual({ applied: false, reason: 'state-lost' });
    const fresh = await a.resetDataset('events');
    expect(await a.readState('events')).toMatchObject({ generation: fresh.generation, records: 0 });
  } finally {
    await cleanup();
  }
});
