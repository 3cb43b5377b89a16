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
import { ANNOTATION_LIMIT, FAILURE_COLOR, PAUSE_COLOR, RESYNC_COLOR } from '../src/datasource';
import type { LiveSyncQuery, LiveSyncVariableQuery } from '../src/types';
import { LiveSyncVariableSupport } from '../src/variables';
import { FakeBackendSrv, type Reply } from './helpers/backendSrv';
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

const body = (queries: unknown[]) => ({
  range: { from: FROM, to: TO },
  intervalMs: 60_000,
  maxDataPoints: 720,
  queries,
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

describe('query()', () => {
  it('posts the panel queries to /api/query and turns frames into DataFrames with their notices', async () => {
    backendSrv().expect(
      {
        method: 'POST',
        url: `${PROXY}/api/query`,
        data: body([
          {
            refId: 'A',
            dataset: 'orders',
            aggregations: ['count', 'sum(amount)'],
            format: 'timeseries',
            groupBy: ['country'],
            filters: { device: ['ios', 'android'] },
          },
        ]),
      },
      {
        status: 200,
        data: {
          results: {
            A: {
              frames: [countFrame('A', 'FR', [3, 5]), countFrame('A', 'DE', [1, null as unknown as number])],
            },
          },
        },
      },
    );
    const ds = answering();
    const responses = await run(
      ds,
      request([
        metrics('A', {
          aggregations: ['count', 'sum(amount)'],
          groupBy: ['country'],
          filters: { device: ['ios', 'android'], country: [] },
          live: false,
        }),
      ]),
    );

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

  it('is Loading while the service answers, then Done', async () => {
    const answer = new Subject<Reply>();
    backendSrv().expect({ method: 'POST', url: `${PROXY}/api/query`, data: body([toService('A')]) }, answer);
    const states: LoadingState[] = [];
    const finished = lastValueFrom(
      answering()
        .query(request([metrics('A')]))
        .pipe(tap((r) => states.push(r.state!))),
    );

    expect(states).toEqual([LoadingState.Loading]);
    answer.next({ status: 200, data: { results: { A: { frames: [countFrame('A', 'FR', [1, 2])] } } } });
    await finished;
    expect(states).toEqual([LoadingState.Loading, LoadingState.Done]);
  });

  it('reports a failed query on its own refId while the others still draw', async () => {
    backendSrv().expect(
      { method: 'POST', url: `${PROXY}/api/query`, data: body([toService('A'), toService('B', 'nope')]) },
      {
        status: 200,
        data: {
          results: {
            A: { frames: [countFrame('A', 'FR', [3, 5])] },
            B: { error: 'queries[1].dataset: unknown dataset "nope"', status: 404 },
          },
        },
      },
    );
    const [, done] = await run(answering(), request([metrics('A'), metrics('B', { dataset: 'nope' })]));

    expect(done!.state).toBe(LoadingState.Done);
    expect((done!.data as DataFrame[]).map((f) => f.refId)).toEqual(['A']);
    expect(done!.errors).toEqual([
      { refId: 'B', message: 'queries[1].dataset: unknown dataset "nope"', status: 404 },
    ]);
  });

  it('turns a response whose every query failed into per-query errors and an Error state', async () => {
    backendSrv().expect(
      { method: 'POST', url: `${PROXY}/api/query`, data: body([toService('A', 'nope')]) },
      {
        status: 404,
        data: {
          message: 'queries[0].dataset: unknown dataset "nope"',
          results: { A: { error: 'queries[0].dataset: unknown dataset "nope"', status: 404 } },
        },
      },
    );
    const [, done] = await run(answering(), request([metrics('A', { dataset: 'nope' })]));

    expect(done).toEqual({
      data: [],
      key: 'Q1',
      state: LoadingState.Error,
      errors: [{ refId: 'A', message: 'queries[0].dataset: unknown dataset "nope"', status: 404 }],
    });
  });

  it.each([
    [
      401,
      { message: 'missing or invalid API key' },
      'LiveSync rejected the API key (401): missing or invalid API key. Check the API key in the data source settings.',
    ],
    [
      503,
      { message: 'store unavailable: connect ECONNREFUSED 127.0.0.1:6379' },
      'LiveSync is unavailable (503): store unavailable: connect ECONNREFUSED 127.0.0.1:6379.',
    ],
    [502, { message: 'Bad Gateway' }, `Could not reach LiveSync at ${SERVICE_URL}: Bad Gateway.`],
    // What Grafana's data-source proxy makes of the service's 401.
    [
      400,
      { message: 'Authentication to data source failed' },
      'LiveSync rejected the API key (Grafana: Authentication to data source failed). Check the API key in the data source settings.',
    ],
  ])('says what a %s means on every query', async (status, data, message) => {
    backendSrv().expect(
      { method: 'POST', url: `${PROXY}/api/query`, data: body([toService('A'), toService('B')]) },
      { status, data },
    );
    const [, done] = await run(answering(), request([metrics('A'), metrics('B')]));

    expect(done!.state).toBe(LoadingState.Error);
    expect(done!.errors).toEqual([
      { refId: 'A', message, status },
      { refId: 'B', message, status },
    ]);
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

  it('asks for freshness and status, sets age units and prefers a table for status', async () => {
    const freshness = {
      schema: {
        refId: 'A',
        fields: [
          { name: 'dataset', type: 'string' },
          { name: 'last_updated', type: 'time' },
          { name: 'age_seconds', type: 'number' },
          { name: 'state', type: 'string' },
          { name: 'stale', type: 'boolean' },
          { name: 'records', type: 'number' },
        ],
      },
      data: { values: [['orders'], [FROM], [12], ['ok'], [false], [1200]] },
    };
    const status = {
      schema: {
        refId: 'B',
        fields: [
          { name: 'dataset', type: 'string' },
          { name: 'state', type: 'string' },
        ],
      },
      data: {
        values: [
          ['orders', 'signups'],
          ['ok', 'failing'],
        ],
      },
    };
    backendSrv().expect(
      {
        method: 'POST',
        url: `${PROXY}/api/query`,
        data: body([
          { refId: 'A', kind: 'freshness' },
          { refId: 'B', kind: 'status', dataset: 'orders' },
        ]),
      },
      { status: 200, data: { results: { A: { frames: [freshness] }, B: { frames: [status] } } } },
    );
    const [, done] = await run(
      answering(),
      request([
        { refId: 'A', kind: 'freshness', aggregations: ['count'] },
        { refId: 'B', kind: 'status', dataset: 'orders' },
      ]),
    );

    const [fresh, table] = done!.data as DataFrame[];
    expect(fresh!.fields.find((f) => f.name === 'age_seconds')!.config.unit).toBe('s');
    expect(fresh!.fields.map((f) => f.values[0])).toEqual(['orders', FROM, 12, 'ok', false, 1200]);
    expect(fresh!.meta?.preferredVisualisationType).toBeUndefined();
    expect(table!.meta?.preferredVisualisationType).toBe('table');
  });

  it("passes Grafana's skip-cache refresh and the dashboard on to the service", async () => {
    backendSrv().expect(
      {
        method: 'POST',
        url: `${PROXY}/api/query`,
        data: body([toService('A')]),
        headers: { 'X-Cache-Skip': 'true', 'X-Dashboard-Uid': 'sales' },
      },
      { status: 200, data: { results: { A: { frames: [] } } } },
    );
    const [, done] = await run(
      answering(),
      request([metrics('A')], { skipQueryCache: true, dashboardUID: 'sales' }),
    );
    expect(done!.state).toBe(LoadingState.Done);
  });

  it('interpolates template variables, expanding multi-value ones into lists', async () => {
    templateSrv().setVariables({
      ds: 'orders',
      metric: ['amount', 'fee'],
      dims: ['country', 'device'],
      country: ['FR', 'DE'],
      empty: [],
    });
    backendSrv().expect(
      {
        method: 'POST',
        url: `${PROXY}/api/query`,
        data: body([
          {
            refId: 'A',
            dataset: 'orders',
            aggregations: ['count', 'sum(amount)', 'sum(fee)'],
            format: 'table',
            groupBy: ['country', 'device'],
            filters: { country: ['FR', 'DE', 'US'], plan: ['pro'] },
          },
        ]),
      },
      { status: 200, data: { results: { A: { frames: [] } } } },
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

const toService = (refId: string, dataset = 'orders') => ({
  refId,
  dataset,
  aggregations: ['count'],
  format: 'timeseries',
});

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

  it('turns state changes into coloured regions and big batches into markers', async () => {
    backendSrv().expect(
      {
        method: 'GET',
        url: `${PROXY}/api/annotations`,
        params: { from: FROM, to: TO, limit: ANNOTATION_LIMIT, dataset: 'orders' },
      },
      {
        status: 200,
        data: [
          {
            time: FROM + 1000,
            timeEnd: FROM + 1000,
            title: 'orders: 120 records synced',
            text: 'one sync run applied 120 records in 80 ms',
            tags: ['sync', 'batch', 'orders'],
          },
          {
            time: FROM + 5000,
            timeEnd: FROM + 9000,
            title: 'orders: sync failed, then recovered',
            text: '3 failed runs over 4 s',
            tags: ['sync', 'failure', 'orders'],
          },
          {
            time: FROM + 10_000,
            timeEnd: FROM + 20_000,
            title: 'orders: resynced after the store lost its data',
            text: '900 records read again in 10 s',
            tags: ['sync', 'resync', 'orders'],
          },
          {
            time: FROM + 30_000,
            timeEnd: FROM + 90_000,
            title: 'orders: sync paused',
            text: 'nothing was synced for 60 s',
            tags: ['sync', 'pause', 'orders'],
          },
        ],
      },
    );
    const ds = makeDataSource();
    const query = ds.annotations!.prepareQuery!(annotation)!;
    const [done, ...more] = await run(ds, request([query]));
    // One packet: an empty Loading one would blank the annotation layer while it waits.
    expect(more).toEqual([]);
    expect(done!.state).toBe(LoadingState.Done);
    const events = (await firstValueFrom(
      ds.annotations!.processEvents!(annotation, done!.data as DataFrame[]),
    ))!;

    expect(events.map((e) => [e.title, e.isRegion, e.color])).toEqual([
      ['orders: 120 records synced', false, undefined],
      ['orders: sync failed, then recovered', true, FAILURE_COLOR],
      ['orders: resynced after the store lost its data', true, RESYNC_COLOR],
      ['orders: sync paused', true, PAUSE_COLOR],
    ]);
    expect(events[1]).toEqual({
      time: FROM + 5000,
      timeEnd: FROM + 9000,
      isRegion: true,
      title: 'orders: sync failed, then recovered',
      text: '3 failed runs over 4 s',
      tags: ['sync', 'failure', 'orders'],
      color: FAILURE_COLOR,
    });
  });

  it('asks for every dataset when none is chosen, with the kinds and batch size set, and reports a failure', async () => {
    backendSrv().expect(
      {
        method: 'GET',
        url: `${PROXY}/api/annotations`,
        params: { from: FROM, to: TO, limit: ANNOTATION_LIMIT, kinds: 'failure,resync', minRecords: 1000 },
      },
      { status: 401, data: { message: 'invalid API key' } },
    );
    const [done, ...more] = await run(
      makeDataSource(),
      request([
        { refId: 'Anno', kind: 'annotations', annotationKinds: ['failure', 'resync'], minRecords: 1000 },
      ]),
    );
    expect(more).toEqual([]);
    expect(done).toEqual({
      data: [],
      key: 'Q1',
      state: LoadingState.Error,
      errors: [
        {
          refId: 'Anno',
          message:
            'LiveSync rejected the API key (401): invalid API key. Check the API key in the data source settings.',
        },
      ],
    });
  });
});

describe('template variable queries', () => {
  const datasets = { status: 200, data: { datasets: [ORDERS, SIGNUPS] } };

  it.each<[string | LiveSyncVariableQuery, string, Record<string, unknown> | undefined, unknown, string[]]>([
    ['datasets', '/api/datasets', undefined, { datasets: [ORDERS, SIGNUPS] }, ['orders', 'signups']],
    [' dimensions( orders ) ', '/api/datasets/orders', undefined, ORDERS, ['country', 'device']],
    [
      'values($ds, country)',
      '/api/datasets/orders/values/country',
      { limit: 100 },
      { values: ['FR', 'DE'] },
      ['FR', 'DE'],
    ],
    [
      { refId: 'V', type: 'values', dataset: 'orders', dimension: '$dim' },
      '/api/datasets/orders/values/device',
      { limit: 100 },
      { values: ['ios'] },
      ['ios'],
    ],
  ])('%j asks %s', async (query, path, params, reply, expected) => {
    templateSrv().setVariables({ ds: 'orders', dim: 'device' });
    backendSrv().expect(
      params ? { method: 'GET', url: `${PROXY}${path}`, params } : { method: 'GET', url: `${PROXY}${path}` },
      { status: 200, data: reply },
    );
    const values = await makeDataSource().metricFindQuery(query);
    expect(values).toEqual(expected.map((text) => ({ text, value: text })));
  });

  it('rejects text it cannot read, quoting the syntax', async () => {
    await expect(makeDataSource().metricFindQuery('metrics(orders)')).rejects.toThrow(
      'LiveSync variable query "metrics(orders)" is not one of: datasets | dimensions(<dataset>) | values(<dataset>, <dimension>)',
    );
  });

  it('says why a dataset could not be listed', async () => {
    backendSrv().expect(
      { method: 'GET', url: `${PROXY}/api/datasets/nope` },
      { status: 404, data: { message: 'unknown dataset "nope"' } },
    );
    await expect(makeDataSource().metricFindQuery('dimensions(nope)')).rejects.toThrow(
      `LiveSync at ${SERVICE_URL} has no /api/datasets/nope (404): unknown dataset "nope". Check that the URL is the service's root.`,
    );
  });

  it('answers the variable editor through CustomVariableSupport with text/value frames', async () => {
    backendSrv().expect({ method: 'GET', url: `${PROXY}/api/datasets` }, datasets);
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
  const health = (status: number, data: unknown) =>
    backendSrv().expect({ method: 'GET', url: `${PROXY}/api/health` }, { status, data });

  it('reports a healthy service, names the Redis it uses (no password) and its datasets', async () => {
    health(200, {
      status: 'ok',
      checks: {
        store: {
          kind: 'redis',
          status: 'ok',
          url: 'redis://cache:6379/0',
          message: 'Redis at redis://cache:6379/0 is reachable',
        },
        datasets: {
          orders: { status: 'ok', ageSeconds: 12 },
          signups: { status: 'resyncing', ageSeconds: 40 },
        },
      },
    });
    expect(await makeDataSource().testDatasource()).toEqual({
      status: 'success',
      message:
        'Connected to LiveSync (store: Redis at redis://cache:6379/0, reachable); 1 dataset up to date (orders); signups is resyncing.',
    });
  });

  it('names stale and failing datasets', async () => {
    health(200, {
      status: 'degraded',
      checks: {
        store: {
          kind: 'memory',
          status: 'ok',
          message:
            'the embedded in-memory store: its data is lost when the service restarts, then synced again',
        },
        datasets: {
          orders: { status: 'stale', ageSeconds: 750 },
          signups: { status: 'failing', ageSeconds: null, message: 'connect ECONNREFUSED 10.0.0.5:5432' },
          events: { status: 'ok', ageSeconds: 3 },
        },
      },
    });
    expect(await makeDataSource().testDatasource()).toEqual({
      status: 'warning',
      message:
        'Connected to LiveSync (store: embedded memory, so its data is lost when the service restarts and is synced again), but 2 datasets need attention: orders is stale (last synced 12m ago); signups is failing: connect ECONNREFUSED 10.0.0.5:5432.',
    });
  });

  it('says Redis is down when the service reports it with a 503', async () => {
    health(503, {
      status: 'down',
      checks: {
        store: {
          kind: 'redis',
          status: 'down',
          url: 'redis://cache:6379/0',
          message: 'Redis at redis://cache:6379/0 is not reachable: connect ECONNREFUSED 127.0.0.1:6379',
        },
        datasets: {},
      },
    });
    expect(await makeDataSource().testDatasource()).toEqual({
      status: 'error',
      message:
        'LiveSync is reachable but its store is down: Redis at redis://cache:6379/0 is not reachable: connect ECONNREFUSED 127.0.0.1:6379. Panels cannot load until it is back.',
    });
  });

  it('says the API key is wrong on a 401', async () => {
    health(401, { message: 'invalid API key' });
    expect(await makeDataSource().testDatasource()).toEqual({
      status: 'error',
      message:
        'LiveSync rejected the API key (401): invalid API key. Check the API key in the data source settings.',
    });
  });

  it('names the URL it tried when the service is unreachable', async () => {
    health(502, { message: 'Bad Gateway' });
    expect(await makeDataSource().testDatasource()).toEqual({
      status: 'error',
      message: `Could not reach LiveSync at ${SERVICE_URL}: Bad Gateway.`,
    });
  });

  it('asks for a URL before calling anything', async () => {
    const result = await makeDataSource({ url: '  ' }).testDatasource();
    expect(result.status).toBe('error');
    expect(result.message).toMatch(/^Set the LiveSync URL/);
  });

  it('says when the service has no datasets yet', async () => {
    health(200, {
      status: 'ok',
      checks: {
        store: {
          kind: 'memory',
          status: 'ok',
          message:
            'the embedded in-memory store: its data is lost when the service restarts, then synced again',
        },
        datasets: {},
      },
    });
    expect((await makeDataSource().testDatasource()).message).toBe(
      'Connected to LiveSync (store: embedded memory, so its data is lost when the service restarts and is synced again). The service has no datasets yet: declare one in its config file.',
    );
  });
});

describe('query model', () => {
  it('starts a new query as a count, and keeps live settings from jsonData', () => {
    const ds = makeDataSource({ liveStreamId: 'ls', liveEnabled: false });
    expect(ds.getDefaultQuery(CoreApp.PanelEditor)).toEqual({
      kind: 'metrics',
      aggregations: ['count'],
      format: 'timeseries',
    });
    expect([ds.url, ds.liveStreamId, ds.liveEnabled]).toEqual([PROXY, 'ls', false]);
    const defaults = makeDataSource();
    expect([defaults.liveStreamId, defaults.liveEnabled]).toEqual(['livesync', true]);
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
