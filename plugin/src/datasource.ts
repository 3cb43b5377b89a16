import {
  type AnnotationEvent,
  type AnnotationQuery,
  type CoreApp,
  type DataFrame,
  type DataFrameJSON,
  type DataQueryError,
  type DataQueryRequest,
  type DataQueryResponse,
  type DataSourceInstanceSettings,
  FieldType,
  type LegacyMetricFindQueryOptions,
  LoadingState,
  type MetricFindValue,
  type ScopedVars,
  type TestDataSourceResponse,
  createDataFrame,
  dataFrameFromJSON,
} from '@grafana/data';
import {
  type BackendSrvRequest,
  DataSourceWithBackend,
  type FetchResponse,
  type GrafanaLiveSrv,
  config,
  getBackendSrv,
  getGrafanaLiveSrv,
  getTemplateSrv,
  isFetchError,
} from '@grafana/runtime';
import {
  type Observable,
  catchError,
  concat,
  forkJoin,
  from,
  interval,
  lastValueFrom,
  map,
  merge,
  mergeMap,
  of,
  share,
} from 'rxjs';
import type {
  AnnotationRecord,
  DatasetInfo,
  DatasetsResponse,
  ErrorBody,
  HealthResponse,
  QueryRequestBody,
  QueryResponseBody,
  RefIdResult,
  ServiceQuery,
  ValuesResponse,
} from './api';
import { AnnotationQueryEditor } from './components/AnnotationQueryEditor';
import { describeFetchError } from './errors';
import { describeHealth } from './health';
import { expandFilters, expandList, interpolateSingle } from './interpolate';
import { type LiveEvent, grafanaLiveEvents, grafanaLiveFreshness, sseEvents } from './live/changes';
import { type TouchedAnswer, followQuery, stepOf } from './live/follow';
import { datasetsIn, followFreshness, followNotices } from './live/freshness';
import { type Span, currentWindow, followsNow } from './live/range';
import {
  DEFAULT_ANNOTATION_QUERY,
  DEFAULT_LIVE_STREAM_ID,
  DEFAULT_QUERY,
  type LiveSyncOptions,
  type LiveSyncQuery,
  type LiveSyncVariableQuery,
  type QueryKind,
} from './types';
import { toVariableQuery } from './variableQuery';
import { LiveSyncVariableSupport } from './variables';

/** The `routes[].path` in plugin.json: Grafana's proxy swaps it for the service URL and adds the API key. */
export const ROUTE_PATH = 'livesync';

/** Sync-run annotations per panel: enough for a month of hourly runs, few enough to draw. */
export const ANNOTATION_LIMIT = 1000;

/** Grafana's palette red: failures stand out whatever colour the annotation layer has. */
export const FAILURE_COLOR = '#F2495C';
/** Grafana's palette orange: a resync after a store loss, while the totals were incomplete. */
export const RESYNC_COLOR = '#FF9830';
/** Grey: a pause in syncing (the service was stopped). */
export const PAUSE_COLOR = '#8E8E8E';

const REGION_COLORS: Record<string, string> = {
  failure: FAILURE_COLOR,
  resync: RESYNC_COLOR,
  pause: PAUSE_COLOR,
};

export const kindOf = (query: Pick<LiveSyncQuery, 'kind'>): QueryKind => query.kind ?? 'metrics';

interface PartialResult {
  data: DataFrame[];
  errors: DataQueryError[];
}

/**
 * The data source's frontend. Its class is Grafana's DataSourceWithBackend: the plugin has a Go
 * backend (pkg/), which Grafana calls for alert rules, recording rules and everything else that
 * runs on the server. Panels in the browser still query the service through the proxy route
 * (see plugin/README.md, "Backend"), so live updates work as before.
 */
export class DataSource extends DataSourceWithBackend<LiveSyncQuery, LiveSyncOptions> {
  /** Root of the proxy route; `${url}/api/...` reaches the service with the API key attached. */
  readonly url: string;
  /** The service URL as configured, for messages ("could not reach …"): the browser never calls it. */
  readonly serviceUrl: string;
  readonly liveStreamId: string;
  readonly liveEnabled: boolean;
  /** Server-sent event streams by dataset, shared by every panel (see sseChanges). */
  private readonly sseStreams = new Map<string, Observable<LiveEvent>>();
  /** When freshness and status panels draw their ages again: once a second. */
  freshnessTick: Observable<unknown> = interval(1000);

  constructor(instanceSettings: DataSourceInstanceSettings<LiveSyncOptions>) {
    super(instanceSettings);
    const proxyUrl = instanceSettings.url ?? `/api/datasources/proxy/uid/${instanceSettings.uid}`;
    this.url = `${proxyUrl.replace(/\/+$/, '')}/${ROUTE_PATH}`;
    this.serviceUrl = instanceSettings.jsonData.url?.trim() ?? '';
    this.liveStreamId = instanceSettings.jsonData.liveStreamId || DEFAULT_LIVE_STREAM_ID;
    this.liveEnabled = instanceSettings.jsonData.liveEnabled ?? true;

    this.annotations = {
      QueryEditor: AnnotationQueryEditor,
      getDefaultQuery: () => ({ ...DEFAULT_ANNOTATION_QUERY }),
      // Whatever the saved annotation holds, it runs as an annotations query.
      prepareQuery: (anno: AnnotationQuery<LiveSyncQuery>) => ({
        ...anno.target,
        refId: anno.target?.refId || 'Anno',
        kind: 'annotations',
      }),
      processEvents: (_anno, frames) => of(framesToAnnotationEvents(frames)),
    };
    this.variables = new LiveSyncVariableSupport(this);
  }

  override getDefaultQuery(_app: CoreApp): Partial<LiveSyncQuery> {
    return { ...DEFAULT_QUERY };
  }

  /** Skips hidden queries and metrics queries the service would reject for want of a dataset or aggregation. */
  override filterQuery(query: LiveSyncQuery): boolean {
    if (query.hide) return false;
    if (kindOf(query) === 'metrics') return Boolean(query.dataset) && (query.aggregations?.length ?? 0) > 0;
    return true;
  }

  override getQueryDisplayText(query: LiveSyncQuery): string {
    switch (kindOf(query)) {
      case 'freshness':
        return `Freshness of ${query.dataset || 'all datasets'}`;
      case 'status':
        return `Sync status of ${query.dataset || 'all datasets'}`;
      case 'annotations':
        return `Sync state changes of ${query.dataset || 'all datasets'}`;
      case 'metrics': {
        const aggs = query.aggregations?.length ? query.aggregations.join(', ') : 'count';
        const by = query.groupBy?.length ? ` by ${query.groupBy.join(', ')}` : '';
        const where = Object.entries(query.filters ?? {})
          .filter(([, values]) => values.length > 0)
          .map(([dim, values]) => `${dim} in (${values.join(', ')})`);
        return `${aggs} of ${query.dataset || '?'}${by}${where.length ? ` where ${where.join(' and ')}` : ''}`;
      }
    }
  }

  /** Interpolates template variables; multi-value variables become lists (see interpolate.ts). */
  override applyTemplateVariables(query: LiveSyncQuery, scopedVars?: ScopedVars): LiveSyncQuery {
    const templateSrv = getTemplateSrv();
    const out: LiveSyncQuery = { ...query };
    if (query.dataset !== undefined) out.dataset = interpolateSingle(templateSrv, query.dataset, scopedVars);
    if (query.aggregations !== undefined)
      out.aggregations = expandList(templateSrv, query.aggregations, scopedVars);
    if (query.groupBy !== undefined) out.groupBy = expandList(templateSrv, query.groupBy, scopedVars);
    if (query.filters !== undefined) out.filters = expandFilters(templateSrv, query.filters, scopedVars);
    return out;
  }

  /** Used when a panel's queries open in Explore: variables are resolved there. */
  override interpolateVariablesInQueries(queries: LiveSyncQuery[], scopedVars: ScopedVars): LiveSyncQuery[] {
    return queries.map((query) => ({
      ...this.applyTemplateVariables(query, scopedVars),
      datasource: this.getRef(),
    }));
  }

  override targetContainsTemplate(query: LiveSyncQuery): boolean {
    const templateSrv = getTemplateSrv();
    const texts = [
      query.dataset,
      ...(query.aggregations ?? []),
      ...(query.groupBy ?? []),
      ...Object.entries(query.filters ?? {}).flat(2),
    ];
    return texts.some((text) => typeof text === 'string' && templateSrv.containsTemplate(text));
  }

  override query(request: DataQueryRequest<LiveSyncQuery>): Observable<DataQueryResponse> {
    const key = request.requestId;
    const targets = request.targets
      .filter((query) => this.filterQuery(query))
      .map((query) => this.applyTemplateVariables(query, request.scopedVars))
      // Variables may expand to nothing: check again.
      .filter((query) => this.filterQuery(query));

    const serviceTargets = targets.filter((query) => kindOf(query) !== 'annotations');
    const annotationTargets = targets.filter((query) => kindOf(query) === 'annotations');
    const parts: Array<Observable<PartialResult>> = [];
    if (serviceTargets.length > 0) parts.push(this.queryService(request, serviceTargets));
    for (const query of annotationTargets) parts.push(this.queryAnnotations(request, query));
    if (parts.length === 0) return of({ data: [], key, state: LoadingState.Done });

    const answer = forkJoin(parts).pipe(
      map((results) => ({ data: results.flatMap((r) => r.data), errors: results.flatMap((r) => r.errors) })),
    );
    // Annotation layers turn every packet into events: an empty Loading packet would blank
    // them until the answer lands. Panels keep their last data while Loading.
    if (serviceTargets.length === 0) return answer.pipe(map(({ data, errors }) => packet(key, data, errors)));

    const done: Observable<DataQueryResponse> = this.liveEnabled
      ? answer.pipe(
          mergeMap(({ data, errors }) => this.answerAndFollow(request, serviceTargets, data, errors)),
        )
      : answer.pipe(map(({ data, errors }) => packet(key, data, errors)));
    return concat(of<DataQueryResponse>({ data: [], key, state: LoadingState.Loading }), done);
  }

  /** Whether a query follows the dataset's changes: its toggle, on unless turned off, if the data source allows it. */
  isLive(query: LiveSyncQuery): boolean {
    return this.liveEnabled && kindOf(query) === 'metrics' && query.live !== false;
  }

  /**
   * The first answer, then what follows it, each followed query under its own key
   * (`<requestId>-<refId>`) so that each packet replaces that query's frames and nothing else;
   * the rest of the answer (errors, unfollowed frames) stays under the request's key:
   * - a live metrics query whose range ends at now follows its dataset's changes and freshness;
   * - any other metrics query follows its dataset's freshness: its notice changes with it;
   * - freshness and status queries follow every dataset they show, and their ages tick.
   */
  private answerAndFollow(
    request: DataQueryRequest<LiveSyncQuery>,
    targets: LiveSyncQuery[],
    data: DataFrame[],
    errors: DataQueryError[],
  ): Observable<DataQueryResponse> {
    const key = request.requestId;
    const receivedAt = Date.now();
    const failed = new Set(errors.map((e) => e.refId));
    const endsNow = followsNow(request.range.raw, request.timezone, receivedAt);
    // One Grafana Live change stream per dataset, shared by the request's queries on it.
    const liveSrv = this.grafanaLive();
    const changeStreams = new Map<string, Observable<LiveEvent>>();
    const eventsOf = (dataset: string, since: number | undefined): Observable<LiveEvent> => {
      if (!liveSrv) return this.sseChanges(dataset);
      let changes = changeStreams.get(dataset);
      if (!changes) {
        changes = grafanaLiveEvents(liveSrv, this.liveStreamId, dataset, since).pipe(share());
        changeStreams.set(dataset, changes);
      }
      return merge(changes, grafanaLiveFreshness(liveSrv, this.liveStreamId, dataset));
    };
    const freshnessOf = (dataset: string): Observable<LiveEvent> =>
      liveSrv ? grafanaLiveFreshness(liveSrv, this.liveStreamId, dataset) : this.sseChanges(dataset);
    const panelRange = () => currentWindow(request.range, request.timezone, Date.now());

    const followed: Array<{ refId: string; frames: DataFrame[]; follow: Observable<DataQueryResponse> }> = [];
    for (const query of targets) {
      const frames = data.filter((frame) => frame.refId === query.refId);
      if (failed.has(query.refId) || frames.length === 0) continue;
      const own = `${key}-${query.refId}`;
      const kind = kindOf(query);
      const dataset = query.dataset ?? '';
      const stepMs = stepOf(frames);
      let follow: Observable<DataQueryResponse>;
      if (kind === 'freshness' || kind === 'status') {
        follow = followFreshness({
          key: own,
          initial: frames,
          receivedAt,
          feeds: datasetsIn(frames).map(freshnessOf),
          tick: this.freshnessTick,
          now: Date.now,
          notices: kind === 'freshness',
        });
      } else if (this.isLive(query) && endsNow && stepMs !== undefined) {
        const since = lastSyncOf(frames);
        follow = followQuery({
          key: own,
          initial: frames,
          since,
          version: versionOf(frames),
          stepMs,
          events: eventsOf(dataset, since),
          window: panelRange,
          fetchSpan: (span) => this.queryTouched(request, query, span, stepMs),
          receivedAt,
          now: Date.now,
        });
      } else {
        follow = followNotices({
          key: own,
          initial: frames,
          receivedAt,
          feed: freshnessOf(dataset),
          now: Date.now,
        });
      }
      followed.push({ refId: query.refId, frames, follow });
    }
    if (followed.length === 0) return of(packet(key, data, errors));

    const ids = new Set(followed.map((f) => f.refId));
    const rest = data.filter((frame) => !ids.has(frame.refId ?? ''));
    const first = [
      packet(key, rest, errors, data.length),
      ...followed.map(({ refId, frames }) => packet(`${key}-${refId}`, frames, [])),
    ];
    return concat(from(first), merge(...followed.map((f) => f.follow)));
  }

  /**
   * A dataset's changes over the service's server-sent events, through the data-source proxy:
   * one connection per dataset for every panel of this data source, opened by the first
   * listener and closed with the last. Browsers allow only six HTTP/1.1 connections per host,
   * so a connection per panel would soon stall Grafana itself.
   */
  private sseChanges(dataset: string): Observable<LiveEvent> {
    let events = this.sseStreams.get(dataset);
    if (!events) {
      const path = `/api/datasets/${encodeURIComponent(dataset)}/events`;
      events = sseEvents(getBackendSrv(), {
        url: `${this.url}${path}`,
        describe: (err) => describeFetchError(err, this.serviceUrl, path),
      }).pipe(share());
      this.sseStreams.set(dataset, events);
    }
    return events;
  }

  /** Grafana Live, if this Grafana runs it (it can be turned off with `[live] max_connections = 0`). */
  private grafanaLive(): GrafanaLiveSrv | undefined {
    if (!config.liveEnabled) return undefined;
    return getGrafanaLiveSrv() ?? undefined;
  }

  /**
   * The query over a touched span only, at the answer's step: intervalMs is the step and
   * maxDataPoints the span's step count, so the service picks that same step again.
   */
  private queryTouched(
    request: DataQueryRequest<LiveSyncQuery>,
    query: LiveSyncQuery,
    span: Span,
    stepMs: number,
  ): Observable<TouchedAnswer> {
    const body: QueryRequestBody = {
      range: { from: span.from, to: span.to },
      intervalMs: stepMs,
      maxDataPoints: Math.max(1, Math.ceil((span.to - span.from) / stepMs)),
      queries: [toServiceQuery(query)],
    };
    const options: BackendSrvRequest = {
      url: `${this.url}/api/query`,
      method: 'POST',
      data: body,
      requestId: `${request.requestId}-${query.refId}-live`,
      // The inspector shows the panel's query, not every small update behind it.
      hideFromInspector: true,
    };
    if (request.dashboardUID) options.headers = { 'X-Dashboard-Uid': request.dashboardUID };
    return this.postQuery(options, [query]).pipe(
      map((result): TouchedAnswer => {
        const error = result.errors[0];
        return error ? { error: error.message ?? 'LiveSync returned an error' } : { frames: result.data };
      }),
    );
  }

  private queryService(
    request: DataQueryRequest<LiveSyncQuery>,
    targets: LiveSyncQuery[],
  ): Observable<PartialResult> {
    const body: QueryRequestBody = {
      range: { from: request.range.from.valueOf(), to: request.range.to.valueOf() },
      intervalMs: Math.max(1, Math.round(request.intervalMs)),
      maxDataPoints: Math.max(1, Math.round(request.maxDataPoints ?? 1000)),
      queries: targets.map(toServiceQuery),
    };
    const options: BackendSrvRequest = {
      url: `${this.url}/api/query`,
      method: 'POST',
      data: body,
      requestId: request.requestId,
    };
    const headers: Record<string, string> = {};
    // Grafana's "refresh, skipping the cache" reaches the service's response cache too.
    if (request.skipQueryCache) headers['X-Cache-Skip'] = 'true';
    // Lets the service count queries per dashboard, as Grafana does for its own data sources.
    if (request.dashboardUID) headers['X-Dashboard-Uid'] = request.dashboardUID;
    if (Object.keys(headers).length > 0) options.headers = headers;
    return this.postQuery(options, targets);
  }

  /** POST /api/query: frames per query, and every failure as a per-query error. */
  private postQuery(options: BackendSrvRequest, targets: LiveSyncQuery[]): Observable<PartialResult> {
    return this.fetch<QueryResponseBody>(options).pipe(
      map((response) => resultsToFrames(response.data.results, targets)),
      catchError((err: unknown) => {
        if (isFetchError<ErrorBody>(err) && err.data && typeof err.data === 'object' && err.data.results) {
          return of(resultsToFrames(err.data.results, targets));
        }
        const message = describeFetchError(err, this.serviceUrl, '/api/query');
        const status = isFetchError(err) ? err.status : undefined;
        return of({ data: [], errors: targets.map((q) => ({ refId: q.refId, message, status })) });
      }),
    );
  }

  private queryAnnotations(
    request: DataQueryRequest<LiveSyncQuery>,
    query: LiveSyncQuery,
  ): Observable<PartialResult> {
    const params: Record<string, string | number> = {
      from: request.range.from.valueOf(),
      to: request.range.to.valueOf(),
      limit: ANNOTATION_LIMIT,
    };
    if (query.dataset) params.dataset = query.dataset;
    if (query.annotationKinds) params.kinds = query.annotationKinds.join(',');
    if (query.minRecords !== undefined && query.minRecords > 0) params.minRecords = query.minRecords;
    return this.fetch<AnnotationRecord[]>({
      url: `${this.url}/api/annotations`,
      method: 'GET',
      params,
      requestId: `${request.requestId}-${query.refId}`,
    }).pipe(
      map((response) => ({ data: [annotationsToFrame(response.data, query.refId)], errors: [] })),
      catchError((err: unknown) =>
        of({
          data: [],
          errors: [
            { refId: query.refId, message: describeFetchError(err, this.serviceUrl, '/api/annotations') },
          ],
        }),
      ),
    );
  }

  override async metricFindQuery(
    query: string | LiveSyncVariableQuery,
    options?: LegacyMetricFindQueryOptions,
  ): Promise<MetricFindValue[]> {
    const variableQuery = toVariableQuery(query);
    const templateSrv = getTemplateSrv();
    const dataset = interpolateSingle(templateSrv, variableQuery.dataset, options?.scopedVars);
    const dimension = interpolateSingle(templateSrv, variableQuery.dimension, options?.scopedVars);
    let names: string[];
    switch (variableQuery.type) {
      case 'datasets':
        names = (await this.getDatasets()).map((d) => d.name);
        break;
      case 'dimensions':
        if (!dataset) throw new Error('dimensions(<dataset>) needs a dataset');
        names = (await this.getDataset(dataset)).dimensions;
        break;
      case 'values':
        if (!dataset || !dimension)
          throw new Error('values(<dataset>, <dimension>) needs a dataset and a dimension');
        names = await this.getDimensionValues(dataset, dimension, options?.searchFilter ?? '');
        break;
    }
    return names.map((text) => ({ text, value: text }));
  }

  override async testDatasource(): Promise<TestDataSourceResponse> {
    if (!this.serviceUrl) {
      return {
        status: 'error',
        message:
          "Set the LiveSync URL (the service's root, as Grafana's server reaches it), then save & test again.",
      };
    }
    try {
      const response = await lastValueFrom(
        this.fetch<HealthResponse>({ url: `${this.url}/api/health`, method: 'GET' }),
      );
      return describeHealth(response.data);
    } catch (err) {
      // 503 with checks is the service itself reporting Redis down, not an unreachable service.
      if (isFetchError<HealthResponse>(err) && err.status === 503 && err.data?.checks)
        return describeHealth(err.data);
      return { status: 'error', message: describeFetchError(err, this.serviceUrl, '/api/health') };
    }
  }

  /** Every dataset the service syncs, with its fields and status. */
  async getDatasets(): Promise<DatasetInfo[]> {
    const response = await this.get<DatasetsResponse>('/api/datasets');
    return response.datasets ?? [];
  }

  async getDataset(name: string): Promise<DatasetInfo> {
    const dataset = interpolateSingle(getTemplateSrv(), name);
    return this.get<DatasetInfo>(`/api/datasets/${encodeURIComponent(dataset)}`);
  }

  /** Known values of a dimension: for template variables and filter suggestions. */
  async getDimensionValues(dataset: string, dimension: string, search = '', limit = 100): Promise<string[]> {
    const templateSrv = getTemplateSrv();
    const name = interpolateSingle(templateSrv, dataset);
    const field = interpolateSingle(templateSrv, dimension);
    const params: Record<string, string | number> = { limit };
    if (search) params.q = search;
    const path = `/api/datasets/${encodeURIComponent(name)}/values/${encodeURIComponent(field)}`;
    const response = await this.get<ValuesResponse>(path, params);
    return response.values ?? [];
  }

  /** Template variable names, offered next to real values in the editors. */
  getVariableOptions(): string[] {
    return getTemplateSrv()
      .getVariables()
      .map((v) => `$${v.name}`);
  }

  private async get<T>(path: string, params?: Record<string, string | number>): Promise<T> {
    const options: BackendSrvRequest = { url: `${this.url}${path}`, method: 'GET' };
    if (params) options.params = params;
    try {
      return (await lastValueFrom(this.fetch<T>(options))).data;
    } catch (err) {
      throw new Error(describeFetchError(err, this.serviceUrl, path.split('?')[0] ?? path));
    }
  }

  /** Every call goes through the proxy route; errors are ours to word, so Grafana shows no toast. */
  private fetch<T>(options: BackendSrvRequest): Observable<FetchResponse<T>> {
    return getBackendSrv().fetch<T>({ ...options, showErrorAlert: false });
  }
}

/**
 * One response packet. Some queries failed: the others still draw and the failures show on
 * their own queries; with nothing to draw at all (`drawn` counts every packet's frames) it is an error.
 */
function packet(
  key: string,
  data: DataFrame[],
  errors: DataQueryError[],
  drawn = data.length,
): DataQueryResponse {
  if (errors.length === 0) return { data, key, state: LoadingState.Done };
  return { data, errors, key, state: drawn === 0 ? LoadingState.Error : LoadingState.Done };
}

/** The dataset's last sync as the answer saw it: changes committed before it are in the answer. */
function lastSyncOf(frames: DataFrame[]): number | undefined {
  for (const frame of frames) {
    const at = (frame.meta?.custom as { lastSyncAt?: unknown } | undefined)?.lastSyncAt;
    if (typeof at === 'number') return at;
  }
  return undefined;
}

/** The dataset's data version the answer was read at, when the service says. */
function versionOf(frames: DataFrame[]): number | undefined {
  for (const frame of frames) {
    const version = (frame.meta?.custom as { version?: unknown } | undefined)?.version;
    if (typeof version === 'number') return version;
  }
  return undefined;
}

export function toServiceQuery(query: LiveSyncQuery): ServiceQuery {
  const kind = kindOf(query);
  if (kind === 'freshness' || kind === 'status') {
    return query.dataset
      ? { refId: query.refId, kind, dataset: query.dataset }
      : { refId: query.refId, kind };
  }
  const out: ServiceQuery = {
    refId: query.refId,
    dataset: query.dataset,
    aggregations: query.aggregations ?? ['count'],
    format: query.format ?? 'timeseries',
  };
  if (query.groupBy?.length) out.groupBy = query.groupBy;
  const filters = Object.entries(query.filters ?? {}).filter(([, values]) => values.length > 0);
  if (filters.length > 0) out.filters = Object.fromEntries(filters);
  return out;
}

function resultsToFrames(
  results: Record<string, RefIdResult> | undefined,
  targets: LiveSyncQuery[],
): PartialResult {
  const out: PartialResult = { data: [], errors: [] };
  for (const query of targets) {
    const result = results?.[query.refId];
    if (!result) {
      out.errors.push({ refId: query.refId, message: 'LiveSync returned no result for this query.' });
    } else if ('error' in result) {
      out.errors.push({ refId: query.refId, message: result.error, status: result.status });
    } else {
      out.data.push(...result.frames.map((frame) => toDataFrame(frame, query)));
    }
  }
  return out;
}

function toDataFrame(json: DataFrameJSON, query: LiveSyncQuery): DataFrame {
  const frame = dataFrameFromJSON(json);
  frame.refId = frame.refId || query.refId;
  const kind = kindOf(query);
  if (kind === 'status' || (kind === 'metrics' && query.format === 'table')) {
    frame.meta = { ...frame.meta, preferredVisualisationType: 'table' };
  }
  for (const field of frame.fields) {
    // Ages read as durations in stat panels without any panel setup.
    if (field.name === 'age_seconds') field.config.unit ??= 's';
  }
  return frame;
}

function toEpochMs(value: number | string | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return value;
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? undefined : parsed;
}

export function annotationsToFrame(records: AnnotationRecord[], refId: string): DataFrame {
  const rows = Array.isArray(records) ? records : [];
  return createDataFrame({
    refId,
    name: 'LiveSync sync state changes',
    fields: [
      { name: 'time', type: FieldType.time, values: rows.map((r) => toEpochMs(r.time)) },
      {
        name: 'timeEnd',
        type: FieldType.time,
        values: rows.map((r) => toEpochMs(r.timeEnd) ?? toEpochMs(r.time)),
      },
      { name: 'title', type: FieldType.string, values: rows.map((r) => r.title) },
      { name: 'text', type: FieldType.string, values: rows.map((r) => r.text) },
      { name: 'tags', type: FieldType.other, values: rows.map((r) => r.tags ?? []) },
      {
        name: 'color',
        type: FieldType.string,
        values: rows.map((r) => (r.tags ?? []).map((tag) => REGION_COLORS[tag]).find(Boolean)),
      },
    ],
  });
}

/**
 * Annotation records as events: regions for state changes (failures in red, resyncs in orange,
 * pauses in grey, whatever colour the layer has), markers for big batches.
 */
export function framesToAnnotationEvents(frames: DataFrame[]): AnnotationEvent[] {
  const events: AnnotationEvent[] = [];
  for (const frame of frames) {
    const column = (name: string) => frame.fields.find((f) => f.name === name)?.values;
    const time = column('time');
    if (!time) continue;
    const [timeEnd, title, text, tags, color] = ['timeEnd', 'title', 'text', 'tags', 'color'].map(column);
    for (let i = 0; i < frame.length; i++) {
      const start = time[i] as number;
      const end = (timeEnd?.[i] as number | undefined) ?? start;
      const event: AnnotationEvent = {
        time: start,
        timeEnd: end,
        isRegion: end > start,
        title: title?.[i] as string | undefined,
        text: text?.[i] as string | undefined,
        tags: (tags?.[i] as string[] | undefined) ?? [],
      };
      const c = color?.[i] as string | undefined;
      if (c) event.color = c;
      events.push(event);
    }
  }
  return events;
}
