import {
  CoreApp,
  type DataFrame,
  type DataFrameJSON,
  type DataQueryRequest,
  type DataQueryResponse,
  type RawTimeRange,
  FieldType,
  LiveChannelScope,
  LoadingState,
  StreamingDataFrame,
  createDataFrame,
  dateTime,
} from '@grafana/data';
import { config } from '@grafana/runtime';
import { Subject, type Subscription, lastValueFrom, of, toArray } from 'rxjs';
import type { DataSource } from '../src/datasource';
import type { LiveEvent } from '../src/live/changes';
import type { DatasetFreshness } from '../src/live/freshness';
import { type TouchedAnswer, followQuery } from '../src/live/follow';
import { currentWindow, followsNow } from '../src/live/range';
import type { LiveSyncQuery } from '../src/types';
import type { Reply } from './helpers/backendSrv';
import { dsAnswer, dsQuery } from './helpers/dsQuery';
import { PROXY, makeDataSource } from './helpers/fixtures';
import { backendSrv, installDoubles, installLiveSrv } from './helpers/runtime';

jest.mock('@grafana/runtime', () => jest.requireActual('./helpers/runtime').mockRuntime());

installDoubles();

const M = 60_000;
const H = 3_600_000;
/** The start of the current minute; "now" is 30 s into it. */
const B = 1_750_000_000_000 - (1_750_000_000_000 % M);
const NOW = B + 30_000;
const FROM = NOW - H;
const LAST_SYNC = NOW - 10_000;
const minute = (n: number) => B + n * M;
/** The data source's own channel for the dataset: its backend's RunStream feeds it. */
const CHANNEL = 'ds/ls-uid/orders';
const EVENTS = `${PROXY}/api/datasets/orders/events`;

let clock = NOW;
const liveEnabled = config.liveEnabled;
beforeEach(() => {
  clock = NOW;
  jest.spyOn(Date, 'now').mockImplementation(() => clock);
});
afterEach(() => {
  jest.restoreAllMocks();
  config.liveEnabled = liveEnabled;
});

const metrics = (refId: string, extra: Partial<LiveSyncQuery> = {}): LiveSyncQuery => ({
  refId,
  kind: 'metrics',
  dataset: 'orders',
  aggregations: ['count'],
  groupBy: ['country'],
  ...extra,
});

/** A query as the backend gets it: template variables applied (none here). */
const toService = (refId: string) => metrics(refId);

function request(
  targets: LiveSyncQuery[],
  raw: RawTimeRange = { from: 'now-1h', to: 'now' },
  extra: Partial<DataQueryRequest<LiveSyncQuery>> = {},
): DataQueryRequest<LiveSyncQuery> {
  return {
    requestId: 'Q1',
    interval: '1m',
    intervalMs: M,
    maxDataPoints: 720,
    range: { from: dateTime(FROM), to: dateTime(NOW), raw },
    scopedVars: {},
    targets,
    timezone: 'utc',
    app: CoreApp.Dashboard,
    startTime: NOW,
    ...extra,
  };
}

/** A metrics frame as the service sends it: rows are [minute offset from B, count]. */
function frame(refId: string, country: string, rows: Array<[number, number]>, lastSyncAt = LAST_SYNC) {
  return {
    schema: {
      refId,
      meta: { custom: { lastSyncAt, ageSeconds: 10, state: 'ok', stepMs: M } },
      fields: [
        { name: 'time', type: 'time', typeInfo: { frame: 'time.Time' } },
        {
          name: 'count',
          type: 'number',
          labels: { country },
          typeInfo: { frame: 'float64', nullable: true },
        },
      ],
    },
    data: { values: [rows.map(([m]) => minute(m)), rows.map(([, v]) => v)] },
  };
}

const answer = (results: Record<string, unknown[]>): Reply => dsAnswer(results);

/** The panel's first query: the last hour at 1m. */
function expectFirstQuery(queries: LiveSyncQuery[], reply: Reply, requestId = 'Q1') {
  backendSrv().expect(
    dsQuery({ requestId, from: FROM, to: NOW, intervalMs: M, maxDataPoints: 720, queries }),
    reply,
  );
}

/** A touched-span query: the same query, over whole steps, at the answer's step. */
function expectTouched(
  queries: LiveSyncQuery[],
  from: number,
  to: number,
  reply: Reply | Subject<Reply>,
  requestId = 'Q1',
) {
  backendSrv().expect(
    dsQuery({
      requestId: `${requestId}-${queries[0]!.refId}-live`,
      from,
      to,
      intervalMs: M,
      maxDataPoints: (to - from) / M,
      queries,
    }),
    reply,
  );
}

/**
 * A packet of the data source's channel as the backend sends it (pkg/plugin/stream.go): one row
 * per service event, its data as JSON.
 */
function eventFrame(rows: Array<{ event: string; at: number; json: unknown }>): DataFrameJSON {
  return {
    schema: {
      name: 'events',
      fields: [
        { name: 'time', type: FieldType.time },
        { name: 'event', type: FieldType.string },
        { name: 'version', type: FieldType.number },
        { name: 'from', type: FieldType.number },
        { name: 'to', type: FieldType.number },
        { name: 'json', type: FieldType.string },
      ],
    },
    data: {
      values: [
        rows.map((r) => r.at),
        rows.map((r) => r.event),
        rows.map((r) => (r.json as { version?: number }).version ?? null),
        rows.map((r) => (r.json as { from?: number }).from ?? null),
        rows.map((r) => (r.json as { to?: number }).to ?? null),
        rows.map((r) => JSON.stringify(r.json)),
      ],
    },
  };
}

/** Change events: a committed batch touched [from, to). */
function liveFrame(rows: Array<{ version: number; from: number; to: number; at: number }>): DataFrameJSON {
  return eventFrame(
    rows.map(({ at, ...change }) => ({ event: 'change', at, json: { dataset: 'orders', ...change } })),
  );
}

const livePacket = (data: unknown): DataQueryResponse => ({ data: [data], state: LoadingState.Streaming });

const notice = (text: string) => ({ severity: 'warning' as const, text: `orders: ${text}` });

/** A freshness update as the service publishes it: healthy, synced at LAST_SYNC, judged now. */
function update(extra: Partial<DatasetFreshness> = {}, row: Record<string, unknown> = {}): DatasetFreshness {
  const lastSyncAt = extra.lastSyncAt === undefined ? LAST_SYNC : extra.lastSyncAt;
  const at = extra.at ?? NOW;
  const state = extra.state ?? 'idle';
  const stale = extra.stale ?? false;
  const incomplete = extra.incomplete ?? false;
  return {
    dataset: 'orders',
    at,
    lastSyncAt,
    ageSeconds: lastSyncAt === null ? null : (at - lastSyncAt) / 1000,
    state,
    stale,
    incomplete,
    version: 7,
    notice: null,
    ...extra,
    row: {
      dataset: 'orders',
      state,
      last_updated: lastSyncAt,
      last_success: lastSyncAt,
      age_seconds: lastSyncAt === null ? null : (at - lastSyncAt) / 1000,
      stale,
      incomplete,
      records: 1200,
      ...row,
    },
  };
}

/** Freshness events on the data source's channel: one row each, the update in `json`. */
function freshnessPacket(...updates: DatasetFreshness[]): DataQueryResponse {
  return livePacket(eventFrame(updates.map((u) => ({ event: 'freshness', at: u.at, json: u }))));
}

const noticesOf = (p: DataQueryResponse) => ((p.data[0] as DataFrame).meta?.notices ?? []).map((n) => n.text);

function watch(ds: DataSource, req: DataQueryRequest<LiveSyncQuery>) {
  const packets: DataQueryResponse[] = [];
  let completed = false;
  const subscription: Subscription = ds.query(req).subscribe({
    next: (p) => packets.push(p),
    error: (err: unknown) => {
      throw err;
    },
    complete: () => (completed = true),
  });
  return { packets, subscription, completed: () => completed };
}

/** [minute offset, value] rows of a frame's first value field. */
const rowsOf = (f: DataFrame) =>
  Array.from({ length: f.length }, (_, i) => [(f.fields[0]!.values[i] - B) / M, f.fields[1]!.values[i]]);

const seriesOf = (p: DataQueryResponse) =>
  (p.data as DataFrame[]).map((f) => [f.fields[1]?.labels?.country, rowsOf(f)]);

describe('live updates over Grafana Live', () => {
  it('answers first, then follows ds/<uid>/<dataset>, re-reads the touched step and merges it', () => {
    const live = installLiveSrv();
    expectFirstQuery(
      [toService('A')],
      answer({
        A: [
          frame('A', 'FR', [
            [-2, 1],
            [-1, 2],
          ]),
        ],
      }),
    );
    const { packets, subscription } = watch(makeDataSource(), request([metrics('A')]));

    expect(packets.map((p) => [p.key, p.state, p.data.length])).toEqual([
      ['Q1', LoadingState.Loading, 0],
      ['Q1', LoadingState.Done, 0],
      ['Q1-A', LoadingState.Done, 1],
    ]);
    expect(seriesOf(packets[2]!)).toEqual([
      [
        'FR',
        [
          [-2, 1],
          [-1, 2],
        ],
      ],
    ]);
    expect(live.requests.map((r) => r.addr)).toEqual([
      { scope: LiveChannelScope.DataSource, stream: 'ls-uid', path: 'orders' },
    ]);
    expect(live.requests[0]!.addr.namespace).toBeUndefined();
    expect(live.listenersOf(CHANNEL)).toBe(1);

    // A batch touched the current minute and the one before.
    expectTouched(
      [toService('A')],
      minute(-1),
      minute(1),
      answer({
        A: [
          frame(
            'A',
            'FR',
            [
              [-1, 5],
              [0, 1],
            ],
            NOW - 1000,
          ),
          frame('A', 'DE', [[0, 4]], NOW - 1000),
        ],
      }),
    );
    live.push(
      CHANNEL,
      livePacket(liveFrame([{ version: 8, from: minute(-1), to: minute(1), at: NOW - 1000 }])),
    );

    expect(packets).toHaveLength(4);
    const update = packets[3]!;
    expect([update.key, update.state, update.errors]).toEqual(['Q1-A', LoadingState.Streaming, undefined]);
    expect(seriesOf(update)).toEqual([
      [
        'FR',
        [
          [-2, 1],
          [-1, 5],
          [0, 1],
        ],
      ],
      ['DE', [[0, 4]]],
    ]);
    // Freshness comes from the newer answer.
    expect((update.data[0] as DataFrame).meta?.custom?.lastSyncAt).toBe(NOW - 1000);

    subscription.unsubscribe();
    expect(live.listenersOf(CHANNEL)).toBe(0);
  });

  it('reads StreamingDataFrames too, and skips rows the answer already had or that were seen before', () => {
    const live = installLiveSrv();
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    const { packets, subscription } = watch(makeDataSource(), request([metrics('A')]));
    const buffer = StreamingDataFrame.fromDataFrameJSON(
      // Grafana replays the channel's last message on subscribe: committed before the answer.
      liveFrame([{ version: 7, from: minute(-1), to: minute(0), at: LAST_SYNC - 5000 }]),
    );
    live.push(CHANNEL, livePacket(buffer));
    expect(packets).toHaveLength(3);

    // The buffer grows: the old row again, and a new one.
    buffer.push(liveFrame([{ version: 9, from: minute(0), to: minute(1), at: NOW }]));
    expectTouched([toService('A')], minute(0), minute(1), answer({ A: [frame('A', 'FR', [[0, 3]])] }));
    live.push(CHANNEL, livePacket(buffer));

    expect(packets).toHaveLength(4);
    expect(seriesOf(packets[3]!)).toEqual([
      [
        'FR',
        [
          [-1, 2],
          [0, 3],
        ],
      ],
    ]);

    // Sent again (after a channel error, say): nothing new, nothing asked.
    live.push(CHANNEL, livePacket(buffer));
    expect(packets).toHaveLength(4);
    subscription.unsubscribe();
  });

  it('asks nothing for changes outside the panel range', () => {
    const live = installLiveSrv();
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    const { packets, subscription } = watch(makeDataSource(), request([metrics('A')]));

    live.push(
      CHANNEL,
      livePacket(
        liveFrame([
          // Late data two hours back, and records stamped in the future.
          { version: 8, from: NOW - 2 * H, to: NOW - 2 * H + M, at: NOW },
          { version: 9, from: minute(5), to: minute(6), at: NOW },
        ]),
      ),
    );

    // The BackendSrv double fails the test on any request it was not told about.
    expect(packets).toHaveLength(3);
    subscription.unsubscribe();
  });

  it('asks nothing for changes at or below the data version the answer was read at', () => {
    const live = installLiveSrv();
    const read = frame('A', 'FR', [[-1, 2]]);
    (read.schema.meta.custom as Record<string, unknown>).version = 9;
    expectFirstQuery([toService('A')], answer({ A: [read] }));
    const { packets, subscription } = watch(makeDataSource(), request([metrics('A')]));

    // Inside the range, but already in the answer: the double fails the test on any request.
    live.push(CHANNEL, livePacket(liveFrame([{ version: 9, from: minute(0), to: minute(1), at: NOW }])));
    expect(packets).toHaveLength(3);

    // A newer change is asked for.
    expectTouched([toService('A')], minute(0), minute(1), answer({ A: [frame('A', 'FR', [[0, 5]])] }));
    live.push(CHANNEL, livePacket(liveFrame([{ version: 10, from: minute(0), to: minute(1), at: NOW }])));
    expect(seriesOf(packets[3]!)).toEqual([
      [
        'FR',
        [
          [-1, 2],
          [0, 5],
        ],
      ],
    ]);
    subscription.unsubscribe();
  });

  it('asks only for the part of a change inside the range, widened to whole steps', () => {
    const live = installLiveSrv();
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    const { packets, subscription } = watch(makeDataSource(), request([metrics('A')]));

    // From two hours back to the current minute: only the panel's hour, from its first step.
    expectTouched([toService('A')], FROM - 30_000, minute(1), answer({ A: [frame('A', 'FR', [[0, 1]])] }));
    live.push(CHANNEL, livePacket(liveFrame([{ version: 8, from: NOW - 2 * H, to: minute(1), at: NOW }])));

    expect(seriesOf(packets[3]!)).toEqual([['FR', [[0, 1]]]]);
    subscription.unsubscribe();
  });

  it('runs one request at a time and gathers the changes that arrive meanwhile into one follow-up', () => {
    const live = installLiveSrv();
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'FR', [[-5, 1]])] }));
    const { packets, subscription } = watch(makeDataSource(), request([metrics('A')]));
    const first = new Subject<Reply>();
    expectTouched([toService('A')], minute(0), minute(1), first);

    live.push(CHANNEL, livePacket(liveFrame([{ version: 8, from: minute(0), to: minute(1), at: NOW }])));
    live.push(CHANNEL, livePacket(liveFrame([{ version: 9, from: minute(-3), to: minute(-2), at: NOW }])));
    live.push(CHANNEL, livePacket(liveFrame([{ version: 10, from: minute(-1), to: minute(0), at: NOW }])));
    expect(packets).toHaveLength(3);
    expect(first.observed).toBe(true);

    // The follow-up covers both later changes.
    expectTouched(
      [toService('A')],
      minute(-3),
      minute(0),
      answer({
        A: [
          frame('A', 'FR', [
            [-3, 7],
            [-1, 8],
          ]),
        ],
      }),
    );
    first.next(answer({ A: [frame('A', 'FR', [[0, 6]])] }));

    expect(packets.slice(3).map(seriesOf)).toEqual([
      [
        [
          'FR',
          [
            [-5, 1],
            [0, 6],
          ],
        ],
      ],
      [
        [
          'FR',
          [
            [-5, 1],
            [-3, 7],
            [-1, 8],
            [0, 6],
          ],
        ],
      ],
    ]);
    subscription.unsubscribe();
  });

  it('closes the channel and cancels the request in flight on unsubscribe', () => {
    const live = installLiveSrv();
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    const { packets, subscription } = watch(makeDataSource(), request([metrics('A')]));
    const inFlight = new Subject<Reply>();
    expectTouched([toService('A')], minute(0), minute(1), inFlight);
    live.push(CHANNEL, livePacket(liveFrame([{ version: 8, from: minute(0), to: minute(1), at: NOW }])));
    expect(inFlight.observed).toBe(true);

    subscription.unsubscribe();

    expect(live.listenersOf(CHANNEL)).toBe(0);
    expect(inFlight.observed).toBe(false);
    // A message after the panel went away reaches nobody and asks nothing.
    live.push(CHANNEL, livePacket(liveFrame([{ version: 9, from: minute(0), to: minute(1), at: NOW }])));
    expect(packets).toHaveLength(3);
  });

  it('shares one channel between the queries on a dataset, each updating under its own key', () => {
    const live = installLiveSrv();
    expectFirstQuery(
      [toService('A'), { ...toService('B'), aggregations: ['sum(amount)'] }],
      answer({ A: [frame('A', 'FR', [[-1, 2]])], B: [frame('B', 'FR', [[-1, 20]])] }),
    );
    const { packets, subscription } = watch(
      makeDataSource(),
      request([metrics('A'), metrics('B', { aggregations: ['sum(amount)'] })]),
    );
    expect(live.listenersOf(CHANNEL)).toBe(1);
    expect(packets.map((p) => p.key)).toEqual(['Q1', 'Q1', 'Q1-A', 'Q1-B']);

    expectTouched([toService('A')], minute(0), minute(1), answer({ A: [frame('A', 'FR', [[0, 3]])] }));
    expectTouched(
      [{ ...toService('B'), aggregations: ['sum(amount)'] }],
      minute(0),
      minute(1),
      answer({ B: [frame('B', 'FR', [[0, 30]])] }),
    );
    live.push(CHANNEL, livePacket(liveFrame([{ version: 8, from: minute(0), to: minute(1), at: NOW }])));

    expect(packets.slice(4).map((p) => [p.key, seriesOf(p)])).toEqual([
      [
        'Q1-A',
        [
          [
            'FR',
            [
              [-1, 2],
              [0, 3],
            ],
          ],
        ],
      ],
      [
        'Q1-B',
        [
          [
            'FR',
            [
              [-1, 20],
              [0, 30],
            ],
          ],
        ],
      ],
    ]);
    subscription.unsubscribe();
    expect(live.listenersOf(CHANNEL)).toBe(0);
  });

  it('keeps failed queries in the first packet; a non-live query follows its freshness only', () => {
    const live = installLiveSrv();
    expectFirstQuery(
      [toService('A'), metrics('B', { live: false }), metrics('C', { dataset: 'nope' })],
      dsAnswer({
        A: [frame('A', 'FR', [[-1, 2]])],
        B: [frame('B', 'DE', [[-1, 4]])],
        C: { error: 'unknown dataset "nope"', status: 404 },
      }),
    );
    const { packets, subscription } = watch(
      makeDataSource(),
      request([metrics('A'), metrics('B', { live: false }), metrics('C', { dataset: 'nope' })]),
    );

    expect(packets.map((p) => [p.key, p.state, (p.data as DataFrame[]).map((f) => f.refId)])).toEqual([
      ['Q1', LoadingState.Loading, []],
      ['Q1', LoadingState.Done, []],
      ['Q1-A', LoadingState.Done, ['A']],
      ['Q1-B', LoadingState.Done, ['B']],
    ]);
    expect(packets[1]!.errors).toEqual([{ refId: 'C', message: 'unknown dataset "nope"', status: 404 }]);
    expect(live.requests.map((r) => r.addr.path)).toEqual(['orders']);
    subscription.unsubscribe();
  });

  it('drops rows that slid out of the window while the panel streams', () => {
    const live = installLiveSrv();
    expectFirstQuery(
      [toService('A')],
      answer({
        A: [
          frame('A', 'FR', [
            [-60, 1],
            [-59, 2],
            [-30, 3],
          ]),
        ],
      }),
    );
    const { packets, subscription } = watch(makeDataSource(), request([metrics('A')]));

    clock = NOW + 2 * M;
    expectTouched([toService('A')], minute(2), minute(3), answer({ A: [frame('A', 'FR', [[2, 9]])] }));
    live.push(CHANNEL, livePacket(liveFrame([{ version: 8, from: minute(2), to: minute(3), at: clock }])));

    // The window is now [B-58m+30s, B+2m+30s]: its first step starts at minute -58.
    expect(seriesOf(packets[3]!)).toEqual([
      [
        'FR',
        [
          [-30, 3],
          [2, 9],
        ],
      ],
    ]);
    subscription.unsubscribe();
  });

  it('shows a failed update and a channel error as warnings, keeps the frames, and retries the failed steps', () => {
    const live = installLiveSrv();
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    const { packets, subscription } = watch(makeDataSource(), request([metrics('A')]));
    const notices = (p: DataQueryResponse) => (p.data[0] as DataFrame).meta?.notices;

    expectTouched(
      [toService('A')],
      minute(0),
      minute(1),
      dsAnswer({ A: { error: 'LiveSync is unavailable (503): store unavailable.', status: 503 } }),
    );
    live.push(CHANNEL, livePacket(liveFrame([{ version: 8, from: minute(0), to: minute(1), at: NOW }])));
    expect(packets[3]!.state).toBe(LoadingState.Streaming);
    expect(packets[3]!.errors).toBeUndefined();
    expect(seriesOf(packets[3]!)).toEqual([['FR', [[-1, 2]]]]);
    expect(notices(packets[3]!)).toEqual([
      { severity: 'warning', text: 'Live update failed: LiveSync is unavailable (503): store unavailable.' },
    ]);

    live.push(CHANNEL, { data: [], state: LoadingState.Error, error: { message: 'connection lost' } });
    expect(notices(packets[4]!)).toEqual([
      { severity: 'warning', text: 'Grafana Live: connection lost' },
      { severity: 'warning', text: 'Live update failed: LiveSync is unavailable (503): store unavailable.' },
    ]);

    // The next change asks again for the steps that failed, too.
    expectTouched(
      [toService('A')],
      minute(-2),
      minute(1),
      answer({
        A: [
          frame('A', 'FR', [
            [-2, 1],
            [0, 5],
          ]),
        ],
      }),
    );
    live.push(CHANNEL, livePacket(liveFrame([{ version: 9, from: minute(-2), to: minute(-1), at: NOW }])));
    expect(packets.slice(5).map((p) => [seriesOf(p), notices(p)])).toEqual([
      // The channel works again: its warning goes at once.
      [
        [['FR', [[-1, 2]]]],
        [
          {
            severity: 'warning',
            text: 'Live update failed: LiveSync is unavailable (503): store unavailable.',
          },
        ],
      ],
      // And the request worked: back to normal.
      [
        [
          [
            'FR',
            [
              [-2, 1],
              [0, 5],
            ],
          ],
        ],
        undefined,
      ],
    ]);
    subscription.unsubscribe();
  });

  it("shows the backend's trouble rows as a warning until its next hello", () => {
    const live = installLiveSrv();
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    const { packets, subscription } = watch(makeDataSource(), request([metrics('A')]));
    const notices = (p: DataQueryResponse) => (p.data[0] as DataFrame).meta?.notices?.map((n) => n.text);

    const trouble = { message: 'Could not reach LiveSync at http://livesync:3000: connection refused.' };
    live.push(CHANNEL, livePacket(eventFrame([{ event: 'trouble', at: NOW, json: trouble }])));
    expect(packets.slice(3).map(notices)).toEqual([[trouble.message]]);

    // The backend reconnected: the service greets it at the version the answer was read at.
    const hello = { dataset: 'orders', version: undefined, freshness: { lastSyncAt: LAST_SYNC } };
    live.push(CHANNEL, livePacket(eventFrame([{ event: 'hello', at: NOW + 1000, json: hello }])));
    expect(packets.slice(4).map(notices)).toEqual([undefined]);
    subscription.unsubscribe();
  });

  it('says so, without failing the panel, when Grafana Live ends the channel with an error', () => {
    const live = installLiveSrv();
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    const { packets, completed } = watch(makeDataSource(), request([metrics('A')]));

    live.fail(CHANNEL, new Error('permission denied'));
    expect(packets.slice(3).map((p) => [p.key, p.state, (p.data[0] as DataFrame).meta?.notices])).toEqual([
      ['Q1-A', LoadingState.Streaming, [{ severity: 'warning', text: 'Grafana Live: permission denied' }]],
      ['Q1-A', LoadingState.Done, [{ severity: 'warning', text: 'Grafana Live: permission denied' }]],
    ]);
    expect(completed()).toBe(true);
    expect(live.listenersOf(CHANNEL)).toBe(0);
  });
});

describe('live updates over server-sent events', () => {
  const SSE = { method: 'GET' as const, url: EVENTS, headers: { Accept: 'text/event-stream' } };
  const sse = (event: string, data: unknown, id?: number) =>
    `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

  it.each([
    ['Grafana Live is not running', () => undefined],
    [
      'Grafana Live is turned off',
      () => {
        installLiveSrv();
        config.liveEnabled = false;
      },
    ],
  ])('reads the events endpoint through the proxy when %s, across chunk boundaries', (_, setup) => {
    setup();
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    const body = new Subject<string>();
    const stream = backendSrv().expectChunked(SSE, { chunks: body });
    const { packets, subscription } = watch(
      makeDataSource(),
      request([metrics('A')], undefined, { app: CoreApp.Explore }),
    );
    expect(stream.open).toBe(true);

    const text =
      'retry: 3000\n\n' +
      sse('hello', { dataset: 'orders', version: 7, freshness: { lastSyncAt: LAST_SYNC } }) +
      ': heartbeat\n\n' +
      sse(
        'change',
        { dataset: 'orders', version: 8, from: minute(0), to: minute(1), upserts: 2, deletes: 0, at: NOW },
        8,
      );
    expectTouched([toService('A')], minute(0), minute(1), answer({ A: [frame('A', 'FR', [[0, 3]])] }));
    // Split inside the retry line, inside the hello's JSON, and between the change's last two newlines.
    const cuts = [0, 7, 40, text.length - 1, text.length];
    for (let i = 1; i < cuts.length; i++) body.next(text.slice(cuts[i - 1], cuts[i]));

    expect(packets.slice(3).map((p) => [p.key, p.state, seriesOf(p)])).toEqual([
      [
        'Q1-A',
        LoadingState.Streaming,
        [
          [
            'FR',
            [
              [-1, 2],
              [0, 3],
            ],
          ],
        ],
      ],
    ]);

    subscription.unsubscribe();
    expect(stream.closedBy).toBe('unsubscribed');
  });

  it('re-reads the whole window when a sync finished between the answer and the connection', () => {
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    const body = new Subject<string>();
    const stream = backendSrv().expectChunked(SSE, { chunks: body });
    const { packets, subscription } = watch(makeDataSource(), request([metrics('A')]));

    expectTouched([toService('A')], FROM - 30_000, minute(1), answer({ A: [frame('A', 'FR', [[-1, 3]])] }));
    body.next(sse('hello', { dataset: 'orders', version: 9, freshness: { lastSyncAt: NOW - 1000 } }));

    expect(seriesOf(packets[3]!)).toEqual([['FR', [[-1, 3]]]]);
    subscription.unsubscribe();
    expect(stream.closedBy).toBe('unsubscribed');
  });

  it('shares one connection per dataset between panels, and closes it with the last one', () => {
    const ds = makeDataSource();
    const body = new Subject<string>();
    const stream = backendSrv().expectChunked(SSE, { chunks: body });
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    const one = watch(ds, request([metrics('A')]));
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'DE', [[-1, 5]])] }), 'Q2');
    const two = watch(ds, request([metrics('A')], undefined, { requestId: 'Q2' }));

    expectTouched([toService('A')], minute(0), minute(1), answer({ A: [frame('A', 'FR', [[0, 3]])] }));
    expectTouched([toService('A')], minute(0), minute(1), answer({ A: [frame('A', 'DE', [[0, 6]])] }), 'Q2');
    body.next(sse('change', { dataset: 'orders', version: 8, from: minute(0), to: minute(1) }, 8));
    expect(one.packets.slice(3).map((p) => [p.key, seriesOf(p)])).toEqual([
      [
        'Q1-A',
        [
          [
            'FR',
            [
              [-1, 2],
              [0, 3],
            ],
          ],
        ],
      ],
    ]);
    expect(two.packets.slice(3).map((p) => [p.key, seriesOf(p)])).toEqual([
      [
        'Q2-A',
        [
          [
            'DE',
            [
              [-1, 5],
              [0, 6],
            ],
          ],
        ],
      ],
    ]);

    one.subscription.unsubscribe();
    expect(stream.open).toBe(true);
    two.subscription.unsubscribe();
    expect(stream.closedBy).toBe('unsubscribed');
  });

  it('aborts the stream and the request in flight on unsubscribe', () => {
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    const body = new Subject<string>();
    const stream = backendSrv().expectChunked(SSE, { chunks: body });
    const { subscription } = watch(makeDataSource(), request([metrics('A')]));
    const inFlight = new Subject<Reply>();
    expectTouched([toService('A')], minute(0), minute(1), inFlight);
    body.next(sse('change', { dataset: 'orders', version: 8, from: minute(0), to: minute(1) }, 8));
    expect(inFlight.observed).toBe(true);

    subscription.unsubscribe();

    expect(stream.closedBy).toBe('unsubscribed');
    expect(body.observed).toBe(false);
    expect(inFlight.observed).toBe(false);
  });

  it('says why live updates stopped when the service refuses the stream, without failing the panel', () => {
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    backendSrv().expectChunked(SSE, { status: 401, chunks: of('{"message":"invalid API key"}') });
    const { packets, completed } = watch(makeDataSource(), request([metrics('A')]));

    const warning = {
      severity: 'warning',
      text: 'LiveSync rejected the API key (401): invalid API key. Check the API key in the data source settings.',
    };
    expect(
      packets.slice(3).map((p) => [p.key, p.state, p.errors, (p.data[0] as DataFrame).meta?.notices]),
    ).toEqual([
      ['Q1-A', LoadingState.Streaming, undefined, [warning]],
      ['Q1-A', LoadingState.Done, undefined, [warning]],
    ]);
    expect(completed()).toBe(true);
  });
});

describe('when there is no data to follow', () => {
  const single = async (ds: DataSource, req: DataQueryRequest<LiveSyncQuery>) => {
    expectFirstQuery(req.targets, answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    // The Observable completes: no stream was opened (the doubles would fail on one).
    return (await lastValueFrom(ds.query(req).pipe(toArray()))).map((p) => [p.key, p.state]);
  };

  it.each<[string, Partial<LiveSyncQuery>, RawTimeRange]>([
    ['the query turned live off', { live: false }, { from: 'now-1h', to: 'now' }],
    ['the range ends in the past', {}, { from: 'now-2h', to: 'now-1h' }],
    ['the range is absolute', {}, { from: dateTime(FROM), to: dateTime(NOW) }],
    ['the range is absolute, written as text', {}, { from: String(FROM), to: String(NOW) }],
  ])('follows the freshness only, asking for no data, when %s', (_, extra, raw) => {
    const live = installLiveSrv();
    expectFirstQuery([metrics('A', extra)], answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    const { packets, subscription } = watch(makeDataSource(), request([metrics('A', extra)], raw));
    expect(packets.map((p) => [p.key, p.state])).toEqual([
      ['Q1', LoadingState.Loading],
      ['Q1', LoadingState.Done],
      ['Q1-A', LoadingState.Done],
    ]);
    expect(live.requests.map((r) => r.addr.path)).toEqual(['orders']);
    // A change is not followed; a new notice is drawn, with the same data.
    live.push(CHANNEL, livePacket(liveFrame([{ version: 8, from: minute(0), to: minute(1), at: NOW }])));
    live.push(
      CHANNEL,
      freshnessPacket(update({ state: 'failing', notice: notice('last error: connection refused') })),
    );
    expect(packets.slice(3).map((p) => [p.key, p.state, seriesOf(p), noticesOf(p)])).toEqual([
      ['Q1-A', LoadingState.Done, [['FR', [[-1, 2]]]], ['orders: last error: connection refused']],
    ]);
    subscription.unsubscribe();
    expect(live.listenersOf(CHANNEL)).toBe(0);
  });

  it('answers once when the data source turned live updates off', async () => {
    installLiveSrv();
    expect(
      await single(makeDataSource({ liveEnabled: false }), request([metrics('A', { live: true })])),
    ).toEqual([
      ['Q1', LoadingState.Loading],
      ['Q1', LoadingState.Done],
    ]);
  });

  it('answers once when the live query failed', async () => {
    installLiveSrv();
    expectFirstQuery(
      [toService('A')],
      dsAnswer({ A: { error: 'LiveSync is unavailable (503): store unavailable.', status: 503 } }),
    );
    const packets = await lastValueFrom(
      makeDataSource()
        .query(request([metrics('A')]))
        .pipe(toArray()),
    );
    expect(packets.map((p) => [p.key, p.state])).toEqual([
      ['Q1', LoadingState.Loading],
      ['Q1', LoadingState.Error],
    ]);
  });
});

describe('freshness on an open panel, with auto-refresh off', () => {
  /** A freshness frame as the service answers it, for one dataset judged at NOW. */
  const freshnessFrame = (refId: string, lastSyncAt = LAST_SYNC, ageSeconds = 10) => ({
    schema: {
      refId,
      name: 'freshness',
      meta: { notices: [] },
      fields: [
        { name: 'dataset', type: 'string' },
        { name: 'last_updated', type: 'time' },
        { name: 'age_seconds', type: 'number', config: { unit: 's' } },
        { name: 'state', type: 'string' },
        { name: 'stale', type: 'boolean' },
        { name: 'incomplete', type: 'boolean' },
        { name: 'records', type: 'number' },
      ],
    },
    data: {
      values: [['orders'], [lastSyncAt], [ageSeconds], ['idle'], [false], [false], [1200]],
    },
  });
  const column = (p: DataQueryResponse, name: string) =>
    (p.data[0] as DataFrame).fields.find((f) => f.name === name)!.values[0];

  function watchFreshness(ds: DataSource, reply = answer({ F: [freshnessFrame('F')] })) {
    expectFirstQuery([{ refId: 'F', kind: 'freshness', dataset: 'orders' }], reply);
    const tick = new Subject<void>();
    ds.freshnessTick = tick;
    const watched = watch(ds, request([{ refId: 'F', kind: 'freshness', dataset: 'orders' }]));
    return { ...watched, tick };
  }

  it('ticks the data age every second, then turns it stale with the notice the service publishes', () => {
    const live = installLiveSrv();
    const { packets, subscription, tick } = watchFreshness(makeDataSource());
    expect(packets.map((p) => [p.key, p.state])).toEqual([
      ['Q1', LoadingState.Loading],
      ['Q1', LoadingState.Done],
      ['Q1-F', LoadingState.Done],
    ]);
    expect(column(packets[2]!, 'age_seconds')).toBe(10);

    clock = NOW + 1000;
    tick.next();
    clock = NOW + 2000;
    tick.next();
    expect(packets.slice(3).map((p) => [p.key, p.state, column(p, 'age_seconds')])).toEqual([
      ['Q1-F', LoadingState.Streaming, 11],
      ['Q1-F', LoadingState.Streaming, 12],
    ]);

    // The service says the dataset crossed staleAfter: the row and the notice change at once.
    clock = NOW + 2500;
    const stale = update(
      {
        at: NOW + 2500,
        stale: true,
        state: 'failing',
        notice: notice('last synced 12 s ago; threshold 10 s'),
      },
      { state: 'failing', stale: true, last_error: 'relation "orders" does not exist' },
    );
    live.push(CHANNEL, freshnessPacket(stale));
    const last = packets.at(-1)!;
    expect([column(last, 'stale'), column(last, 'state'), column(last, 'age_seconds')]).toEqual([
      true,
      'failing',
      12.5,
    ]);
    expect(noticesOf(last)).toEqual(['orders: last synced 12 s ago; threshold 10 s']);

    // It recovers: fresh again, no notice.
    clock = NOW + 4000;
    live.push(CHANNEL, freshnessPacket(update({ at: NOW + 4000, lastSyncAt: NOW + 3900 })));
    expect([column(packets.at(-1)!, 'age_seconds'), noticesOf(packets.at(-1)!)]).toEqual([0.1, []]);
    subscription.unsubscribe();
    expect(live.listenersOf(CHANNEL)).toBe(0);
  });

  it("counts ages on the service's clock, whatever this browser's clock says", () => {
    installLiveSrv();
    // The service's clock is five minutes ahead: its answer says 10 s at what is NOW + 5 min there.
    const { packets, subscription, tick } = watchFreshness(
      makeDataSource(),
      answer({ F: [freshnessFrame('F', LAST_SYNC + 300_000)] }),
    );
    clock = NOW + 3000;
    tick.next();
    expect(column(packets.at(-1)!, 'age_seconds')).toBe(13);
    subscription.unsubscribe();
  });

  it('keeps ticking over the service events without Grafana Live, and says when the stream is in trouble', () => {
    const body = new Subject<string>();
    backendSrv().expectChunked(
      { method: 'GET', url: EVENTS, headers: { Accept: 'text/event-stream' } },
      { chunks: body },
    );
    const { packets, subscription, tick } = watchFreshness(makeDataSource());
    const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    body.next(sse('hello', { dataset: 'orders', version: 7, freshness: update() }));
    clock = NOW + 1000;
    body.next(
      sse(
        'freshness',
        update({
          at: NOW + 1000,
          incomplete: true,
          state: 'resyncing',
          notice: notice('resyncing; totals are incomplete'),
        }),
      ),
    );
    expect(noticesOf(packets.at(-1)!)).toEqual(['orders: resyncing; totals are incomplete']);
    expect(column(packets.at(-1)!, 'incomplete')).toBe(true);
    clock = NOW + 2000;
    tick.next();
    expect(column(packets.at(-1)!, 'age_seconds')).toBe(12);
    subscription.unsubscribe();
  });

  it('replaces the notice of a live metrics panel when the freshness changes, and draws nothing when it does not', () => {
    const live = installLiveSrv();
    expectFirstQuery([toService('A')], answer({ A: [frame('A', 'FR', [[-1, 2]])] }));
    const { packets, subscription } = watch(makeDataSource(), request([metrics('A')]));
    expect(packets).toHaveLength(3);

    // A routine run: a newer last success, the same (no) notice.
    live.push(CHANNEL, freshnessPacket(update({ at: NOW + 1000, lastSyncAt: NOW + 900 })));
    expect(packets).toHaveLength(3);

    // The store lost the dataset: the panel says the totals are incomplete, in words and in meta.
    const lost = update({
      at: NOW + 2000,
      lastSyncAt: NOW + 900,
      state: 'resyncing',
      incomplete: true,
      notice: notice('resyncing from the start after the store lost its data; totals are incomplete'),
    });
    live.push(CHANNEL, freshnessPacket(lost));
    expect(packets).toHaveLength(4);
    const [meta] = (packets[3]!.data as DataFrame[]).map((f) => f.meta);
    expect(packets[3]!.state).toBe(LoadingState.Streaming);
    expect(meta?.notices).toEqual([lost.notice]);
    expect(meta?.custom).toMatchObject({ incomplete: true, state: 'resyncing', lastSyncAt: NOW + 900 });
    expect(seriesOf(packets[3]!)).toEqual([['FR', [[-1, 2]]]]);

    // A replay of an older update (Grafana sends a channel's last message again) changes nothing.
    live.push(CHANNEL, freshnessPacket(update({ at: NOW + 1000, lastSyncAt: NOW + 900 })));
    expect(packets).toHaveLength(4);

    live.push(CHANNEL, freshnessPacket(update({ at: NOW + 3000, lastSyncAt: NOW + 2900 })));
    expect(packets).toHaveLength(5);
    expect(packets[4]!.data.map((f: DataFrame) => f.meta?.notices)).toEqual([undefined]);
    expect((packets[4]!.data[0] as DataFrame).meta?.custom).toMatchObject({
      incomplete: false,
      state: 'idle',
    });
    subscription.unsubscribe();
  });

  it('keeps every row of a sync-status table current, one dataset at a time', () => {
    const live = installLiveSrv();
    const status = {
      schema: {
        refId: 'S',
        name: 'sync status',
        fields: [
          { name: 'dataset', type: 'string' },
          { name: 'state', type: 'string' },
          { name: 'last_success', type: 'time' },
          { name: 'age_seconds', type: 'number' },
          { name: 'records', type: 'number' },
        ],
      },
      data: {
        values: [
          ['orders', 'signups'],
          ['idle', 'idle'],
          [LAST_SYNC, NOW - 1000],
          [10, 1],
          [1200, 30],
        ],
      },
    };
    expectFirstQuery([{ refId: 'S', kind: 'status' }], answer({ S: [status] }));
    const ds = makeDataSource();
    const tick = new Subject<void>();
    ds.freshnessTick = tick;
    const { packets, subscription } = watch(ds, request([{ refId: 'S', kind: 'status' }]));
    expect(live.requests.map((r) => r.addr.path)).toEqual(['orders', 'signups']);

    live.push(CHANNEL, freshnessPacket(update({ state: 'failing' }, { records: 1300 })));
    const table = packets.at(-1)!.data[0] as DataFrame;
    const values = (name: string) => table.fields.find((f) => f.name === name)!.values;
    expect([values('dataset'), values('state'), values('records'), values('age_seconds')]).toEqual([
      ['orders', 'signups'],
      ['failing', 'idle'],
      [1300, 30],
      [10, 1],
    ]);
    // Status tables carry no notices: the failure shows in its row.
    expect(table.meta?.notices).toEqual([]);
    subscription.unsubscribe();
  });
});

describe('followQuery', () => {
  const step = M;
  const range = { from: FROM, to: NOW };
  const initial = [
    createDataFrame({
      refId: 'A',
      meta: { custom: { stepMs: M, lastSyncAt: LAST_SYNC } },
      fields: [
        { name: 'time', type: FieldType.time, values: [minute(-1)] },
        { name: 'count', type: FieldType.number, values: [2] },
      ],
    }),
  ];
  const touchedFrame = (m: number, v: number, stepMs = M) =>
    createDataFrame({
      refId: 'A',
      meta: { custom: { stepMs, lastSyncAt: NOW } },
      fields: [
        { name: 'time', type: FieldType.time, values: [minute(m)] },
        { name: 'count', type: FieldType.number, values: [v] },
      ],
    });

  function setup() {
    const events = new Subject<LiveEvent>();
    const asked: Array<{ from: number; to: number }> = [];
    const replies: Array<Subject<TouchedAnswer>> = [];
    const packets: DataQueryResponse[] = [];
    let completed = false;
    const subscription = followQuery({
      key: 'Q1-A',
      initial,
      since: LAST_SYNC,
      stepMs: step,
      events,
      window: () => range,
      fetchSpan: (span) => {
        asked.push(span);
        const reply = new Subject<TouchedAnswer>();
        replies.push(reply);
        return reply;
      },
    }).subscribe({ next: (p) => packets.push(p), complete: () => (completed = true) });
    const answer = (i: number, a: TouchedAnswer) => {
      replies[i]!.next(a);
      replies[i]!.complete();
    };
    return { events, asked, answer, packets, subscription, completed: () => completed };
  }

  it('re-reads the whole window after a reconnect that missed versions, and only then', () => {
    const { events, asked, answer, subscription } = setup();
    const whole = { from: FROM - 30_000, to: minute(1) };

    events.next({ type: 'hello', version: 7, lastSyncAt: LAST_SYNC });
    expect(asked).toEqual([]);
    events.next({ type: 'change', version: 8, from: minute(0), to: minute(1) });
    expect(asked).toEqual([{ from: minute(0), to: minute(1) }]);
    answer(0, { frames: [touchedFrame(0, 1)] });

    events.next({ type: 'trouble', message: 'LiveSync closed the event stream; reconnecting in 3 s' });
    events.next({ type: 'recovered' });
    events.next({ type: 'hello', version: 8, lastSyncAt: NOW });
    expect(asked).toHaveLength(1);

    events.next({ type: 'trouble', message: 'lost' });
    events.next({ type: 'recovered' });
    events.next({ type: 'hello', version: 11, lastSyncAt: NOW });
    expect(asked).toEqual([{ from: minute(0), to: minute(1) }, whole]);
    subscription.unsubscribe();
  });

  it('refuses an answer in another step, keeping the frames and saying why', () => {
    const { events, answer, packets, subscription } = setup();
    events.next({ type: 'change', version: 8, from: minute(0), to: minute(1) });
    answer(0, { frames: [touchedFrame(0, 1, 2 * M)] });

    expect(rowsOf(packets[0]!.data[0] as DataFrame)).toEqual([[-1, 2]]);
    expect((packets[0]!.data[0] as DataFrame).meta?.notices).toEqual([
      {
        severity: 'warning',
        text: 'Live update failed: the service answered in steps of 120000 ms instead of 60000 ms; refresh the panel',
      },
    ]);
    subscription.unsubscribe();
  });

  it('finishes the request in flight when the stream ends, then says Done', () => {
    const { events, answer, packets, completed } = setup();
    events.next({ type: 'change', version: 8, from: minute(0), to: minute(1) });
    events.complete();
    expect(completed()).toBe(false);

    answer(0, { frames: [touchedFrame(0, 1)] });
    expect(packets.map((p) => [p.state, rowsOf(p.data[0] as DataFrame)])).toEqual([
      [
        LoadingState.Streaming,
        [
          [-1, 2],
          [0, 1],
        ],
      ],
      [
        LoadingState.Done,
        [
          [-1, 2],
          [0, 1],
        ],
      ],
    ]);
    expect(completed()).toBe(true);
  });
});

describe('followsNow', () => {
  it.each<[RawTimeRange['to'], boolean]>([
    ['now', true],
    [' now ', true],
    ['now/d', true],
    ['now+1h', true],
    ['now-5m', false],
    ['now-1d/d', false],
    [dateTime(NOW), false],
    [String(NOW), false],
    ['2025-06-15T00:00:00Z||+1d', false],
  ])('%s → %s', (to, expected) => {
    expect(followsNow({ from: 'now-1h', to }, 'utc', NOW)).toBe(expected);
  });

  it('resolves the window again at the time asked, so it slides with the clock', () => {
    const range = { from: dateTime(FROM), to: dateTime(NOW), raw: { from: 'now-1h', to: 'now' } };
    expect(currentWindow(range, 'utc', NOW + M)).toEqual({ from: FROM + M, to: NOW + M });
    const absolute = { ...range, raw: { from: dateTime(FROM), to: dateTime(NOW) } };
    expect(currentWindow(absolute, 'utc', NOW + M)).toEqual({ from: FROM, to: NOW });
  });
});
