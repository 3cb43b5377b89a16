import type { DatasetSpec } from '../../src/config/dataset';
import type { ReconcileSpec } from '../../src/config/reconcile';
import { SourceError } from '../../src/sources/types';
import type { Store } from '../../src/store/types';
import { BOTH_STORES } from '../helpers';
import {
  COUNTRY_SQL,
  DEVICE_SQL,
  eventsSpec,
  expectHourlyEqual,
  HOUR,
  PgSchema,
  pgEngine,
  recordTombstones,
  sqlHourly,
  storeHourly,
} from './support';

const T0 = Date.UTC(2026, 0, 5);
const RANGE = { from: T0 - 2 * HOUR, to: T0 + 4 * 24 * HOUR };

const schema = new PgSchema();
let tables = 0;

beforeAll(() => schema.create());
afterAll(() => schema.drop());

/** A fresh events table of `rows` rows over two days. */
async function eventsTable(rows: number): Promise<string> {
  const table = await schema.createEvents(`events_${++tables}`);
  await schema.sql(
    `INSERT INTO ${table} (ts, country, device, amount, duration_ms, user_id)
     SELECT to_timestamp(${T0 / 1000}) + random() * interval '2 days', ${COUNTRY_SQL}, ${DEVICE_SQL},
            round((random() * 1000)::numeric, 2), (random() * 5000)::int, 'u' || floor(random() * 500)
     FROM generate_series(1, ${rows})`,
  );
  return table;
}

function withReconcile(spec: DatasetSpec, reconcile: Partial<ReconcileSpec>): DatasetSpec {
  return { ...spec, sync: { ...spec.sync, reconcile: { ...spec.sync.reconcile, ...reconcile } } };
}

async function sqlIds(table: string, ids: string[]): Promise<string[]> {
  const rows = await schema.sql<{ id: string }>(`SELECT id::text FROM ${table} WHERE id = ANY($1)`, [ids]);
  return rows.map((r) => r.id);
}

/** Syncs run by run until a pass that started after `startedAt` has ended. */
async function syncUntilPassEnds(sync: ReturnType<typeof pgEngine>, startedAt: number): Promise<void> {
  for (let runs = 0; (sync.engine.status().reconcile!.lastPass?.startedAt ?? 0) <= startedAt; runs++) {
    if (runs > 60) throw new Error('the pass did not end within 60 runs');
    await sync.syncOnce();
  }
}

describe.each(BOTH_STORES)('reconciliation against PostgreSQL, %s store', (_, open) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let clock: number;
  const now = () => clock;

  beforeEach(async () => {
    ({ store, cleanup } = await open());
    clock = Date.now();
  });

  afterEach(() => cleanup());

  it('a plain DELETE of 10 rows: after the next pass the API equals SQL', async () => {
    const table = await eventsTable(2000);
    const spec = withReconcile(eventsSpec(table), { everyMs: HOUR, pageSize: 500 });
    const sync = pgEngine(spec, store, { now });
    try {
      await sync.syncOnce();
      const first = sync.engine.status().reconcile!;
      expect(first.lastPass).toMatchObject({ checked: 2000, tombstoned: 0 });
      expect(first.nextPassAt).toBe(first.lastPass!.startedAt + HOUR);

      const gone = await schema.sql<{ id: string }>(
        `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} ORDER BY random() LIMIT 10) RETURNING id::text`,
      );
      expect(gone).toHaveLength(10);
      // Not due yet: the cursor alone does not see a DELETE.
      await sync.syncOnce();
      expect(sync.engine.status().records).toBe(2000);

      clock += HOUR;
      await sync.syncOnce();
      const status = sync.engine.status();
      expect(status.records).toBe(1990);
      expect(status.reconcile).toMatchObject({
        pass: null,
        lastPass: { checked: 2000, tombstoned: 10 },
        lastError: null,
      });
      expect((await store.readState(spec.name))!.records).toBe(1990);
      expectHourlyEqual(await storeHourly(store, spec, RANGE), await sqlHourly(schema, table));
      const regions = await store.readRegions(spec.name, 0, clock + HOUR, 10);
      expect(regions).toEqual([expect.objectContaining({ kind: 'reconcile', count: 10, checked: 2000 })]);
    } finally {
      await sync.close();
    }
  });

  it('never removes a live record while inserts, updates and deletes land during the pass', async () => {
    const table = await eventsTable(1000);
    const spec = withReconcile(eventsSpec(table), { everyMs: HOUR, pageSize: 40 });
    const sync = pgEngine(spec, store, { now });
    const tombstoned = recordTombstones(store);
    try {
      await sync.syncOnce();
      expect(sync.engine.status().reconcile!.lastPass!.tombstoned).toBe(0);

      // From now on, between the store's listing of each page and the upstream's answer, the
      // upstream changes: rows of the page are updated, deleted, deleted and inserted again
      // under the same id; new rows arrive; rows of pages still to come are deleted.
      const existing = sync.source.existing.bind(sync.source);
      const deleted: string[] = [];
      sync.source.existing = async (ids, signal) => {
        const [a, b, c, d, e] = ids;
        await schema.sql(`UPDATE ${table} SET amount = amount + 7, country = 'ZA' WHERE id = ANY($1)`, [
          [a, b],
        ]);
        await schema.sql(`DELETE FROM ${table} WHERE id = ANY($1)`, [[c, d]]);
        await schema.sql(
          `WITH gone AS (DELETE FROM ${table} WHERE id = $1 RETURNING *)
           INSERT INTO ${table} (id, ts, country, device, amount, duration_ms, user_id)
           SELECT id, ts + interval '1 hour', 'IN', device, amount + 1, duration_ms, user_id FROM gone`,
          [e],
        );
        await schema.sql(
          `INSERT INTO ${table} (ts, country, device, amount, duration_ms, user_id)
           SELECT to_timestamp(${T0 / 1000}) + random() * interval '2 days', ${COUNTRY_SQL}, ${DEVICE_SQL}, 1, 1, 'new'
           FROM generate_series(1, 3)`,
        );
        const later = await schema.sql<{ id: string }>(
          `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE NOT id = ANY($1) ORDER BY random() LIMIT 2)
           RETURNING id::text`,
          [ids],
        );
        deleted.push(c!, d!, ...later.map((r) => r.id));
        return existing(ids, signal);
      };

      clock += HOUR;
      await sync.syncOnce();
      const pass = sync.engine.status().reconcile!.lastPass!;
      expect(pass.checked).toBeGreaterThanOrEqual(1000);
      expect(tombstoned.length).toBeGreaterThan(0);
      // Every record removed is gone upstream: none was live.
      expect(await sqlIds(table, tombstoned)).toEqual([]);

      // The next sync reads the updates, inserts and re-inserts; the next pass the deletes of
      // pages it had checked already.
      sync.source.existing = existing;
      clock += HOUR;
      await sync.syncOnce();
      expect(await sqlIds(table, deleted)).toEqual([]);
      expectHourlyEqual(await storeHourly(store, spec, RANGE), await sqlHourly(schema, table));
      const [row] = await schema.sql<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`);
      expect(sync.engine.status().records).toBe(Number(row!.n));
    } finally {
      await sync.close();
    }
  });

  it('a failed lookup keeps the pass where it was, and the next run checks that page again', async () => {
    const table = await eventsTable(1200);
    const spec = withReconcile(eventsSpec(table), { everyMs: HOUR, pageSize: 100, perRun: 200 });
    const sync = pgEngine(spec, store, { now });
    try {
      await sync.syncOnce();
      const before = sync.engine.status().reconcile!.pass!;
      await schema.sql(
        `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} ORDER BY random() LIMIT 10)`,
      );
      const existing = sync.source.existing.bind(sync.source);
      sync.source.existing = async () => {
        throw new SourceError('events: connection reset', 'transient');
      };
      await sync.syncOnce();
      const failed = sync.engine.status().reconcile!;
      expect(failed.pass).toEqual(before);
      expect(failed.lastError).toMatchObject({ message: 'events: connection reset', class: 'transient' });
      expect(failed.nextPassAt).toBeNull();

      sync.source.existing = existing;
      await sync.syncOnce();
      const resumed = sync.engine.status().reconcile!;
      expect(resumed.pass!.startedAt).toBe(before.startedAt);
      expect(resumed.pass!.checked).toBeGreaterThan(before.checked);
      // The pass ends, then the next one finds whatever it had checked before the deletes.
      clock += HOUR;
      await syncUntilPassEnds(sync, before.startedAt);
      expect(sync.engine.status().reconcile!.lastError).toBeNull();
      expect(sync.engine.status().records).toBe(1190);
      expectHourlyEqual(await storeHourly(store, spec, RANGE), await sqlHourly(schema, table));
    } finally {
      await sync.close();
    }
  });

  it('a pass split across runs resumes where it stopped, across a restart too', async () => {
    // Enough rows that Redis keeps the records in a real hash table (it lists a small one in one step).
    const table = await eventsTable(1200);
    const spec = withReconcile(eventsSpec(table), { everyMs: HOUR, pageSize: 50, perRun: 200 });
    let sync = pgEngine(spec, store, { now });
    let shares = 0;
    sync.engine.on('reconcile', () => shares++);
    try {
      await sync.syncOnce();
      const first = sync.engine.status().reconcile!;
      expect(first.lastPass).toBeNull();
      expect(first.pass).toMatchObject({ cursor: expect.not.stringMatching(/^0$/) });
      const checkedFirst = first.pass!.checked;
      expect(checkedFirst).toBeGreaterThanOrEqual(200);
      expect(checkedFirst).toBeLessThan(1200);

      await schema.sql(
        `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} ORDER BY random() LIMIT 10)`,
      );

      // A restarted service takes the pass up from the status the last one saved.
      await sync.close();
      sync = pgEngine(spec, store, { now });
      sync.engine.on('reconcile', () => shares++);
      await store.register(spec);
      await sync.engine.restore();
      await sync.syncOnce();
      const resumed = sync.engine.status().reconcile!;
      expect(resumed.pass!.startedAt).toBe(first.pass!.startedAt);
      expect(resumed.pass!.checked).toBeGreaterThanOrEqual(checkedFirst + 200);

      while (sync.engine.status().reconcile!.lastPass === null) {
        await sync.syncOnce();
        if (shares > 30) throw new Error('the pass did not end');
      }
      const split = sync.engine.status().reconcile!.lastPass!;
      // SCAN's COUNT is a hint: a share may check a few more ids than asked.
      expect(shares).toBeGreaterThanOrEqual(1200 / 200 - 1);
      expect(split.checked).toBeGreaterThanOrEqual(1190);

      // Rows deleted behind the scan are found by the next pass.
      clock += HOUR;
      await syncUntilPassEnds(sync, split.startedAt);
      const second = sync.engine.status().reconcile!.lastPass!;
      expect(split.tombstoned + second.tombstoned).toBe(10);
      expect(sync.engine.status().records).toBe(1190);
      expectHourlyEqual(await storeHourly(store, spec, RANGE), await sqlHourly(schema, table));
    } finally {
      await sync.close();
    }
  });
});
