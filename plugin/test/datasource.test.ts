import {
  type AnnotationQuery,
  type DataQueryRequest,
  type DataQueryResponse,
  type DataFrame,
  CoreApp,
  FieldType,
  LoadingState,
  dateTime,
} from '@grafana/data';
import { Subject, firstValueFrom, lastValueFrom, tap, toArray } from 'rxjs';
import type { DataSource } from '../src/datasource';
import type { LiveSyncQuery, LiveSyncVariableQuery } from '../src/types';
import { LiveSyncVariableSupport } from '../src/variables';
import { FakeBackendSrv, type Reply } from './helpers/backendSrv';
import { dsAnswer, dsQuery, resourceCall } from './helpers/dsQuery';
import { ORDERS, PROXY, SERVICE_URL, SIGNUPS, makeDataSource } from './helpers/fixtures';
import { backendSrv, installDoubles, templateSrv } from './helpers/runtime';

jest.mock('@grafana/runtime', () => jest.requireActual('./helpers/runtime').mockRuntime());

installDoubles();

const FROM = 1_750_000_000_000;
const TO = FROM + 3_600_000;

function request(
  targets: LiveSyncQuery[],
  extra: Partial<DataQueryRequest<LiveSyncQuery>> = {},
): DataQueryRequest<LiveSyncQuery> {
  return {
    requestId: 'Q1',
    interval: '1m',
    intervalMs: 60_000,
    maxDataPoints: 720,
    // A fixed range: nothing to follow live (live.test.ts covers ranges that end at now).
    range: { from: dateTime(FROM), to: dateTime(TO), raw: { from: dateTime(FROM), to: dateTime(TO) } },
    scopedVars: {},
    targets,
    timezone: 'utc',
    app: CoreApp.Dashboard,
    startTime: FROM,
    ...extra,
  };
}

const metrics = (refId: string, extra: Partial<LiveSyncQuery> = {}): LiveSyncQuery => ({
  refId,
  kind: 'metrics',
  dataset: 'orders',
  aggregations: ['count'],
  ...extra,
});

const countFrame = (refId: string, country: string, values: number[]) => ({
  schema: {
    refId,
    meta: {
      custom: { lastSyncAt: FROM, ageSeconds: 300, state: 'stale', stepMs: 60_000 },
      notices: [{ severity: 'warning', text: 'orders is stale: last synced 5m ago (stale after 2m)' }],
    },
    fields: [
      { name: 'time', type: 'time', typeInfo: { frame: 'time.Time' } },
      { name: 'count', type: 'number', labels: { country }, typeInfo: { frame: 'float64', nullable: true } },
    ],
  },
  data: { values: [[FROM, FROM + 60_000], values] },
});

/** Live updates off: each query is answered once (live.test.ts covers what follows an answer). */
const answering = () => makeDataSource({ liveEnabled: false });

async function run(ds: DataSource, req: DataQueryRequest<LiveSyncQuery>): Promise<DataQueryResponse[]> {
  return lastValueFrom(ds.query(req).pipe(toArray()));
}

/** The panel's request as the plugin's backend gets it (dsQuery), for these applied queries. */
const sent = (queries: LiveSyncQuery[], headers?: Record<string, string>) =>
  dsQuery({ requestId: 'Q1', from: FROM, to: TO, intervalMs: 60_000, maxDataPoints: 720, queries, headers });

describe('query()', () => {
  it("sends the panel's queries to the backend through /api/ds/query and keeps frames with their freshness", async () => {
    const query = metrics('A', {
      aggregations: ['count', 'sum(amount)'],
      groupBy: ['country'],
      filters: { device: ['ios', 'android'], country: [] },
      live: false,
    });
    // Filters without values are dropped on the way (applyTemplateVariables).
    backendSrv().expect(
      sent([{ ...query, filters: { device: ['ios', 'android'] } }]),
      dsAnswer({ A: [countFrame('A', 'FR', [3, 5]), countFrame('A', 'DE', [1, null as unknown as number])] }),
    );
    const responses = await run(answering(), request([query]));

    expect(responses.map((r) => r.state)).toEqual([LoadingState.Loading, LoadingState.Done]);
    expect(responses[0]).toEqual({ data: [], key: 'Q1', state: LoadingState.Loading });
    const done = responses[1]!;
    expect(done.errors).toBeUndefined();
    expect(done.key).toBe('Q1');
    const frames = done.data as DataFrame[];
    expect(frames).toHaveLength(2);
    const [fr, de] = frames;
    expect(fr!.refId).toBe('A');
    expect(fr!.length).toBe(2);
    expect(fr!.fields.map((f) => [f.name, f.type, f.labels, f.values])).toEqual([
      ['time', FieldType.time, undefined, [FROM, FROM + 60_000]],
      ['count', FieldType.number, { country: 'FR' }, [3, 5]],
    ]);
    expect(de!.fields[1]!.values).toEqual([1, null]);
    expect(fr!.meta?.notices).toEqual([
      { severity: 'warning', text: 'orders is stale: last synced 5m ago (stale after 2m)' },
    ]);
    expect(fr!.meta?.custom).toEqual({ lastSyncAt: FROM, ageSeconds: 300, state: 'stale', stepMs: 60_000 });
  });

  it('is Loading while the backend answers, then Done', async () => {
    const answer = new Subject<Reply>();
    backendSrv().expect(sent([metrics('A')]), answer);
    const states: LoadingState[] = [];
    const finished = lastValueFrom(
      answering()
        .query(request([metrics('A')]))
        .pipe(tap((r) => states.push(r.state!))),
    );

    expect(states).toEqual([LoadingState.Loading]);
    answer.next(dsAnswer({ A: [countFrame('A', 'FR', [1, 2])] }));
    await finished;
    expect(states).toEqual([LoadingState.Loading, LoadingState.Done]);
  });

  it('reports a failed query on its own refId while the others still draw', async () => {
    backendSrv().expect(
      sent([metrics('A'), metrics('B', { dataset: 'nope' })]),
      dsAnswer({
        A: [countFrame('A', 'FR', [3, 5])],
        B: { error: 'queries[1].dataset: unknown dataset "nope"', status: 404 },
      }),
    );
    const [, done] = await run(answering(), request([metrics('A'), metrics('B', { dataset: 'nope' })]));

    expect(done!.state).toBe(LoadingState.Done);
    expect((done!.data as DataFrame[]).map((f) => f.refId)).toEqual(['A']);
    expect(done!.errors).toEqual([
      expect.objectContaining({
        refId: 'B',
        message: 'queries[1].dataset: unknown dataset "nope"',
        status: 404,
      }),
    ]);
  });

  it('turns a response whose every query failed into per-query errors and an Error state', async () => {
    backendSrv().expect(
      sent([metrics('A', { dataset: 'nope' })]),
      dsAnswer({ A: { error: 'queries[0].dataset: unknown dataset "nope"', status: 404 } }),
    );
    const [, done] = await run(answering(), request([metrics('A', { dataset: 'nope' })]));

    expect(done!.state).toBe(LoadingState.Error);
    expect(done!.key).toBe('Q1');
    expect(done!.data).toEqual([]);
    expect(done!.errors).toEqual([
      expect.objectContaining({
        refId: 'A',
        message: 'queries[0].dataset: unknown dataset "nope"',
        status: 404,
      }),
    ]);
  });

  it('says what Grafana said when it could not run the backend at all', async () => {
    backendSrv().expect(sent([metrics('A'), metrics('B')]), {
      status: 500,
      data: { message: 'Plugin unavailable' },
    });
    const [, done] = await run(answering(), request([metrics('A'), metrics('B')]));

    expect(done!.state).toBe(LoadingState.Error);
    expect(done!.errors?.map((e) => e.message)).toEqual(['Plugin unavailable']);
  });

  it('skips hidden and incomplete queries, and sends nothing when none is left', async () => {
    const ds = answering();
    const responses = await run(
      ds,
      request([
        metrics('A', { hide: true }),
        { refId: 'B', kind: 'metrics', aggregations: ['count'] },
        metrics('C', { aggregations: [] }),
      ]),
    );
    // The BackendSrv double fails the test on any request: none was expected.
    expect(responses).toEqual([{ data: [], key: 'Q1', state: LoadingState.Done }]);
  });

  it('sends freshness and status queries as they are, with the tables the backend prefers', async () => {
    const status = {
      schema: {
        refId: 'B',
        meta: { preferredVisualisationType: 'table' },
        fields: [
          { name: 'dataset', type: 'string' },
          { name: 'state', type: 'string' },
        ],
      },
      data: { values: [['orders'], ['ok']] },
    };
    const queries: LiveSyncQuery[] = [
      { refId: 'A', kind: 'freshness', aggregations: ['count'] },
      { refId: 'B', kind: 'status', dataset: 'orders' },
    ];
    backendSrv().expect(sent(queries), dsAnswer({ A: [], B: [status] }));
    const [, done] = await run(answering(), request(queries));

    const [table] = done!.data as DataFrame[];
    expect(table!.meta?.preferredVisualisationType).toBe('table');
  });

  it("passes Grafana's skip-cache refresh and the dashboard on to the backend", async () => {
    backendSrv().expect(
      sent([metrics('A')], { 'X-Cache-Skip': 'true', 'X-Dashboard-Uid': 'sales' }),
      dsAnswer({ A: [] }),
    );
    const [, done] = await run(
      answering(),
      request([metrics('A')], { skipQueryCache: true, dashboardUID: 'sales' }),
    );
    expect(done!.state).toBe(LoadingState.Done);
  });

  it('applies template variables with applyTemplateVariables, expanding multi-value ones into lists', async () => {
    templateSrv().setVariables({
      ds: 'orders',
      metric: ['amount', 'fee'],
      dims: ['country', 'device'],
      country: ['FR', 'DE'],
      empty: [],
    });
    backendSrv().expect(
      sent([
        metrics('A', {
          dataset: 'orders',
          aggregations: ['count', 'sum(amount)', 'sum(fee)'],
          groupBy: ['country', 'device'],
          filters: { country: ['FR', 'DE', 'US'], plan: ['pro'] },
          format: 'table',
        }),
      ]),
      dsAnswer({ A: [] }),
    );
    await run(
      answering(),
      request(
        [
          metrics('A', {
            dataset: '$ds',
            aggregations: ['count', 'sum($metric)', 'sum(${metric})'],
            groupBy: ['$dims', 'country'],
            filters: { country: ['$country', 'US'], device: ['$empty'], '${dim}': ['pro'] },
            format: 'table',
          }),
        ],
        { scopedVars: { dim: { text: 'plan', value: 'plan' } } },
      ),
    );
  });
});

/** The backend's annotations frame (pkg/plugin/annotations.go): one row per record, colours by kind. */
function annotationsFrame(
  refId: string,
  rows: Array<{
    time: number;
    timeEnd: number;
    title: string;
    text: string;
    tags: string[];
    color: string | null;
  }>,
) {
  return {
    schema: {
      name: 'LiveSync sync state changes',
      refId,
      fields: [
        { name: 'time', type: 'time', typeInfo: { frame: 'time.Time' } },
        { name: 'timeEnd', type: 'time', typeInfo: { frame: 'time.Time' } },
        { name: 'title', type: 'string', typeInfo: { frame: 'string' } },
        { name: 'text', type: 'string', typeInfo: { frame: 'string' } },
        { name: 'tags', type: 'other', typeInfo: { frame: 'json.RawMessage' } },
        { name: 'color', type: 'string', typeInfo: { frame: 'string', nullable: true } },
      ],
    },
    data: {
      values: [
        rows.map((r) => r.time),
        rows.map((r) => r.timeEnd),
        rows.map((r) => r.title),
        rows.map((r) => r.text),
        rows.map((r) => r.tags),
        rows.map((r) => r.color),
      ],
    },
  };
}

const RED = '#F2495C';

describe('annotations', () => {
  const annotation: AnnotationQuery<LiveSyncQuery> = {
    name: 'Syncs',
    enable: true,
    iconColor: 'blue',
    target: { refId: 'Anno', dataset: 'orders' } as LiveSyncQuery,
  };

  it('runs a saved annotation as an annotations query, whatever its target holds', () => {
    const ds = makeDataSource();
    expect(ds.annotations!.prepareQuery!(annotation)).toEqual({
      refId: 'Anno',
      kind: 'annotations',
      dataset: 'orders',
    });
    expect(ds.annotations!.prepareQuery!({ name: 'old', enable: true, iconColor: 'red' })).toEqual({
      refId: 'Anno',
      kind: 'annotations',
    });
    expect(ds.annotations!.getDefaultQuery!()).toEqual({ kind: 'annotations' });
  });

  it("asks the backend, and turns its rows into regions in the backend's colours and markers", async () => {
    const ds = makeDataSource();
    const query = ds.annotations!.prepareQuery!(annotation)!;
    backendSrv().expect(
      sent([query]),
      dsAnswer({
        Anno: [
          annotationsFrame('Anno', [
            {
              time: FROM + 1000,
              timeEnd: FROM + 1000,
              title: 'orders: 120 records synced',
              text: 'one sync run applied 120 records in 80 ms',
              tags: ['sync', 'batch', 'orders'],
              color: null,
            },
            {
              time: FROM + 5000,
              timeEnd: FROM + 9000,
              title: 'orders: sync failed, then recovered',
              text: '3 failed runs over 4 s',
              tags: ['sync', 'failure', 'orders'],
              color: RED,
            },
          ]),
        ],
      }),
    );
    const [done, ...more] = await run(ds, request([query]));
    // One packet: an empty Loading one would blank the annotation layer while it waits.
    expect(more).toEqual([]);
    expect(done!.state).toBe(LoadingState.Done);
    const events = (await firstValueFrom(
      ds.annotations!.processEvents!(annotation, done!.data as DataFrame[]),
    ))!;

    expect(events).toEqual([
      {
        time: FROM + 1000,
        timeEnd: FROM + 1000,
        isRegion: false,
        title: 'orders: 120 records synced',
        text: 'one sync run applied 120 records in 80 ms',
        tags: ['sync', 'batch', 'orders'],
      },
      {
        time: FROM + 5000,
        timeEnd: FROM + 9000,
        isRegion: true,
        title: 'orders: sync failed, then recovered',
        text: '3 failed runs over 4 s',
        tags: ['sync', 'failure', 'orders'],
        color: RED,
      },
    ]);
  });

  it("sends the kinds and batch size along, and reports the backend's words for a failure", async () => {
    const query: LiveSyncQuery = {
      refId: 'Anno',
      kind: 'annotations',
      annotationKinds: ['failure', 'resync'],
      minRecords: 1000,
    };
    const message =
      'LiveSync rejected the API key (401): invalid API key. Check the API key in the data source settings.';
    backendSrv().expect(sent([query]), dsAnswer({ Anno: { error: message, status: 401 } }));
    const [done, ...more] = await run(makeDataSource(), request([query]));
    expect(more).toEqual([]);
    expect(done!.state).toBe(LoadingState.Error);
    expect(done!.errors).toEqual([expect.objectContaining({ refId: 'Anno', message, status: 401 })]);
  });
});

describe('template variable queries', () => {
  const datasets = { status: 200, data: { datasets: [ORDERS, SIGNUPS] } };

  it.each<[string | LiveSyncVariableQuery, string, Record<string, unknown> | undefined, unknown, string[]]>([
    ['datasets', 'datasets', undefined, { datasets: [ORDERS, SIGNUPS] }, ['orders', 'signups']],
    [' dimensions( orders ) ', 'datasets/orders', undefined, ORDERS, ['country', 'device']],
    [
      'values($ds, country)',
      'datasets/orders/values/country',
      { limit: 100 },
      { values: ['FR', 'DE'] },
      ['FR', 'DE'],
    ],
    [
      { refId: 'V', type: 'values', dataset: 'orders', dimension: '$dim' },
      'datasets/orders/values/device',
      { limit: 100 },
      { values: ['ios'] },
      ['ios'],
    ],
  ])('%j asks the backend for %s', async (query, path, params, reply, expected) => {
    templateSrv().setVariables({ ds: 'orders', dim: 'device' });
    backendSrv().expect(resourceCall(path, params), { status: 200, data: reply });
    const values = await makeDataSource().metricFindQuery(query);
    expect(values).toEqual(expected.map((text) => ({ text, value: text })));
  });

  it('rejects text it cannot read, quoting the syntax', async () => {
    await expect(makeDataSource().metricFindQuery('metrics(orders)')).rejects.toThrow(
      'LiveSync variable query "metrics(orders)" is not one of: datasets | dimensions(<dataset>) | values(<dataset>, <dimension>)',
    );
  });

  it("says why a dataset could not be listed, in the backend's words", async () => {
    const message = `LiveSync at ${SERVICE_URL} has no /api/datasets/nope (404): unknown dataset "nope". Check that the URL is the service's root.`;
    backendSrv().expect(resourceCall('datasets/nope'), { status: 404, data: { message } });
    await expect(makeDataSource().metricFindQuery('dimensions(nope)')).rejects.toThrow(message);
  });

  it('says when Grafana could not call the backend at all', async () => {
    backendSrv().expect(resourceCall('datasets'), { status: 500, statusText: 'Internal Server Error' });
    await expect(makeDataSource().metricFindQuery('datasets')).rejects.toThrow(
      'Grafana could not call the LiveSync backend for datasets (500 Internal Server Error).',
    );
  });

  it('answers the variable editor through CustomVariableSupport with text/value frames', async () => {
    backendSrv().expect(resourceCall('datasets'), datasets);
    const ds = makeDataSource();
    const variableRequest = request([]) as unknown as DataQueryRequest<LiveSyncVariableQuery>;
    variableRequest.targets = [{ refId: 'V', type: 'datasets' }];
    const response = await firstValueFrom((ds.variables as LiveSyncVariableSupport).query(variableRequest));
    const [frame] = response.data as DataFrame[];
    expect(frame!.fields.map((f) => [f.name, f.values])).toEqual([
      ['text', ['orders', 'signups']],
      ['value', ['orders', 'signups']],
    ]);
  });
});

describe('testDatasource()', () => {
  /** Grafana's /api/datasources/uid/<uid>/health: 200 when OK, else 400, with the backend's words. */
  const health = (status: 'OK' | 'ERROR', message: string, verdict?: string) =>
    backendSrv().expect(
      {
        method: 'GET',
        url: '/api/datasources/uid/ls-uid/health',
        headers: { 'X-Plugin-Id': 'livesync-datasource', 'X-Datasource-Uid': 'ls-uid' },
      },
      {
        status: status === 'OK' ? 200 : 400,
        data: { status, message, ...(verdict ? { details: { verdict } } : {}) },
      },
    );

  it("says what the backend's health check says", async () => {
    const message =
      'Connected to LiveSync (store: Redis at redis://cache:6379/0, reachable); 1 dataset up to date (orders).';
    health('OK', message, 'success');
    expect(await makeDataSource().testDatasource()).toEqual({ status: 'success', message });
  });

  it('shows a warning when the backend says datasets need attention', async () => {
    const message =
      'Connected to LiveSync (store: embedded memory), but 1 dataset needs attention: orders is stale.';
    health('OK', message, 'warning');
    expect(await makeDataSource().testDatasource()).toEqual({ status: 'warning', message });
  });

  it('shows an error with the words of a failed check', async () => {
    const message =
      'LiveSync rejected the API key (401): invalid API key. Check the API key in the data source settings.';
    health('ERROR', message, 'error');
    expect(await makeDataSource().testDatasource()).toEqual({ status: 'error', message });
  });
});

describe('query model', () => {
  it('starts a new query as a count, and keeps live settings from jsonData', () => {
    const ds = makeDataSource({ liveEnabled: false });
    expect(ds.getDefaultQuery(CoreApp.PanelEditor)).toEqual({
      kind: 'metrics',
      aggregations: ['count'],
      format: 'timeseries',
    });
    expect([ds.url, ds.liveEnabled]).toEqual([PROXY, false]);
    expect(makeDataSource().liveEnabled).toBe(true);
  });

  it('filters hidden and incomplete queries only', () => {
    const ds = makeDataSource();
    expect(ds.filterQuery(metrics('A'))).toBe(true);
    expect(ds.filterQuery(metrics('A', { hide: true }))).toBe(false);
    expect(ds.filterQuery(metrics('A', { dataset: '' }))).toBe(false);
    expect(ds.filterQuery(metrics('A', { aggregations: [] }))).toBe(false);
    expect(ds.filterQuery({ refId: 'A', kind: 'freshness' })).toBe(true);
    expect(ds.filterQuery({ refId: 'A', kind: 'status' })).toBe(true);
  });

  it('resolves variables when queries move to Explore, and knows which queries hold them', () => {
    templateSrv().setVariables({ ds: 'orders', dims: ['country', 'device'] });
    const ds = makeDataSource();
    const query = metrics('A', { dataset: '$ds', groupBy: ['$dims'] });
    expect(ds.interpolateVariablesInQueries([query], {})).toEqual([
      {
        ...query,
        dataset: 'orders',
        groupBy: ['country', 'device'],
        datasource: { type: 'livesync-datasource', uid: 'ls-uid' },
      },
    ]);
    expect(ds.targetContainsTemplate(query)).toBe(true);
    expect(ds.targetContainsTemplate(metrics('A', { filters: { country: ['$dims'] } }))).toBe(true);
    expect(ds.targetContainsTemplate(metrics('A'))).toBe(false);
  });

  it('describes a query in one line', () => {
    const ds = makeDataSource();
    expect(
      ds.getQueryDisplayText(
        metrics('A', {
          aggregations: ['count', 'sum(amount)'],
          groupBy: ['country'],
          filters: { device: ['ios'] },
        }),
      ),
    ).toBe('count, sum(amount) of orders by country where device in (ios)');
    expect(ds.getQueryDisplayText({ refId: 'B', kind: 'freshness' })).toBe('Freshness of all datasets');
  });
});

describe('the BackendSrv double', () => {
  it('fails on a request nobody announced, and on announced requests never sent', () => {
    const fake = new FakeBackendSrv();
    fake.expect({ method: 'GET', url: '/never' }, { status: 200, data: {} });
    expect(() => fake.fetch({ url: '/surprise', method: 'GET', showErrorAlert: false })).toThrow(
      'BackendSrv double: unexpected request: GET /surprise',
    );
    expect(() => fake.verify()).toThrow(
      /unexpected request: GET \/surprise[\s\S]*expected but not sent: GET \/never/,
    );
  });

  it('fails on an unannounced chunked request, and on a chunked stream left open', () => {
    const fake = new FakeBackendSrv();
    expect(() => fake.chunked({ url: '/events', method: 'GET', showErrorAlert: false })).toThrow(
      'BackendSrv double: unexpected chunked request: GET /events',
    );

    const open = new FakeBackendSrv();
    const stream = open.expectChunked({ method: 'GET', url: '/events' }, { chunks: new Subject<string>() });
    const subscription = open.chunked({ url: '/events', method: 'GET', showErrorAlert: false }).subscribe();
    expect(() => open.verify()).toThrow(/chunked stream left open: GET \/events/);
    subscription.unsubscribe();
    expect(stream.closedBy).toBe('unsubscribed');
    expect(() => open.verify()).not.toThrow();
  });
});
