import { datasetSpec } from '../helpers';
import { harness, row, T0, type Harness } from './harness';

describe('reconciliation in the API: status, annotations, metrics', () => {
  let h: Harness;
  beforeAll(async () => {
    const spec = datasetSpec({ retention: '3650d' });
    // A pass at every run (the config asks for more than 0; a spec may say 0), so the next
    // run's pass finds what the upstream dropped meanwhile, however fast the runs follow.
    spec.sync.reconcile = { everyMs: 0, pageSize: 4, perRun: 1000 };
    h = await harness({
      spec,
      upstream: (source) => {
        const existing = async (ids: string[]) =>
          new Set(ids.filter((id) => source.rows.some((r) => r.id === id)));
        Object.assign(source, { existing });
      },
    });
    h.source.rows = Array.from({ length: 20 }, (_, i) => row(i + 1, T0, i % 2 ? 'US' : 'DE', i + 1));
    await h.syncNow();
    // Five rows deleted upstream: nothing a cursor could see.
    h.source.rows = h.source.rows.filter((r) => Number(r.id) % 4 !== 0);
    await h.syncNow();
  });
  afterAll(async () => h.app.close());

  it('reports the config and the last pass in /api/datasets', async () => {
    const events = (await h.app.inject({ method: 'GET', url: '/api/datasets/events' })).json();
    expect(events.sync.reconcile).toEqual({ every: '0ms', pageSize: 4, perRun: 1000 });
    expect(events.status.records).toBe(15);
    expect(events.status.reconcile).toMatchObject({
      pass: null,
      lastPass: { checked: 20, tombstoned: 5 },
      lastError: null,
    });
  });

  it('reports the last pass in the status table', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/query',
      payload: {
        range: { from: T0, to: T0 + 60_000 },
        queries: [{ refId: 'S', kind: 'status', dataset: 'events' }],
      },
    });
    const [frame] = res.json().results.S.frames;
    const column = (name: string) => {
      const index = frame.schema.fields.findIndex((field: { name: string }) => field.name === name);
      return frame.data.values[index][0];
    };
    expect(column('reconcile_checked')).toBe(20);
    expect(column('reconcile_deleted')).toBe(5);
    expect(column('reconcile_last_pass')).toBeGreaterThan(T0);
  });

  it('annotates a pass that removed records', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: `/api/annotations?dataset=events&from=0&to=${Date.now() + 60_000}&kinds=reconcile`,
    });
    expect(res.json()).toEqual([
      expect.objectContaining({
        title: 'events: 5 records deleted upstream removed',
        text: expect.stringMatching(
          /^a reconciliation pass checked 20 records in \d+ s and removed those gone upstream$/,
        ),
        tags: ['sync', 'reconcile', 'events'],
      }),
    ]);
  });

  it('counts checked and removed records in /metrics', async () => {
    const text = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toContain('livesync_reconcile_records_total{dataset="events",result="deleted"} 5');
    expect(text).toMatch(/livesync_reconcile_records_total\{dataset="events",result="checked"\} (\d+)/);
    expect(Number(/result="checked"\} (\d+)/.exec(text)![1])).toBeGreaterThanOrEqual(40);
    expect(text).toMatch(/livesync_reconcile_last_pass_timestamp_seconds\{dataset="events"\} \d/);
  });
});
