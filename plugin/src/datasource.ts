import {
  type AnnotationEvent,
  type AnnotationQuery,
  type CoreApp,
  type DataFrame,
  type DataQueryError,
  type DataQueryRequest,
  type DataQueryResponse,
  type DataSourceInstanceSettings,
  type LegacyMetricFindQueryOptions,
  LoadingState,
  type MetricFindValue,
  type ScopedVars,
  type TestDataSourceResponse,
  dateTime,
} from '@grafana/data';
import {
  DataSourceWithBackend,
  type HealthCheckResult,
  HealthStatus,
  type GrafanaLiveSrv,
  config,
  getBackendSrv,
  getGrafanaLiveSrv,
  getTemplateSrv,
} from '@grafana/runtime';
import { type Observable, concat, from, interval, map, merge, mergeMap, of, share } from 'rxjs';
import type { DatasetInfo, DatasetsResponse, ValuesResponse } from './api';
import { AnnotationQueryEditor } from './components/AnnotationQueryEditor';
import { describeBackendError, describeFetchError } from './errors';
import { expandFilters, expandList, interpolateSingle } from './interpolate';
import { type LiveEvent, dataSourceEvents, sseEvents } from './live/changes';
import { type TouchedAnswer, followQuery, stepOf } from './live/follow';
import { datasetsIn, followFreshness, followNotices } from './live/freshness';
import { type Span, currentWindow, followsNow } from './live/range';
import {
  DEFAULT_ANNOTATION_QUERY,
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

export const kindOf = (query: Pick<LiveSyncQuery, 'kind'>): QueryKind => query.kind ?? 'metrics';

interface PartialResult {
  data: DataFrame[];
  errors: DataQueryError[];
}

/**
 * The data source's frontend, a DataSourceWithBackend: queries (panels, Explore, annotations),
 * the editors' resources, "Save & test" and live updates all go through the plugin's Go backend
 * (pkg/), the same one Grafana runs alert and recording rules with. Only the event streams of a
 * Grafana without Live use the proxy route (see plugin/README.md, "Backend").
 */
export class DataSource extends DataSourceWithBackend<LiveSyncQuery, LiveSyncOptions> {
  /** Root of the proxy route, for the service's events when Grafana Live is off (see sseChanges). */
  readonly url: string;
  /** The service URL as configured, for messages ("could not reach …"): the browser never calls it. */
  readonly serviceUrl: string;
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

  /**
   * Every query goes to the plugin's backend through Grafana's `/api/ds/query` (the default
   * DataSourceWithBackend query, which applies template variables with applyTemplateVariables);
   * then live metrics queries follow their dataset over Grafana Live (see answerAndFollow).
   */
  override query(request: DataQueryRequest<LiveSyncQuery>): Observable<DataQueryResponse> {
    const key = request.requestId;
    // Variables may expand to nothing: a query is sent only if it is still whole once applied.
    const kept = request.targets.filter(
      (query) =>
        this.filterQuery(query) && this.filterQuery(this.applyTemplateVariables(query, request.scopedVars)),
    );
    if (kept.length === 0) return of({ data: [], key, state: LoadingState.Done });
    const targets = kept.map((query) => this.applyTemplateVariables(query, request.scopedVars));

    const answer = this.queryBackend({ ...request, targets: kept });
    // Annotation layers turn every packet into events: an empty Loading packet would blank
    // them until the answer lands. Panels keep their last data while Loading.
    if (targets.every((query) => kindOf(query) === 'annotations'))
      return answer.pipe(map(({ data, errors }) => packet(key, data, errors)));

    const done: Observable<DataQueryResponse> = this.liveEnabled
      ? answer.pipe(mergeMap(({ data, errors }) => this.answerAndFollow(request, targets, data, errors)))
      : answer.pipe(map(({ data, errors }) => packet(key, data, errors)));
    return concat(of<DataQueryResponse>({ data: [], key, state: LoadingState.Loading }), done);
  }

  /** One `/api/ds/query` call: the frames, and each query's failure as its own error. */
  private queryBackend(request: DataQueryRequest<LiveSyncQuery>): Observable<PartialResult> {
    return super.query(request).pipe(
      map((response) => ({
        data: response.data as DataFrame[],
        errors: response.errors ?? (response.error ? [response.error] : []),
      })),
    );
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
    // Over Grafana Live, each dataset's channel ds/<uid>/<dataset> (Grafana runs one backend
    // stream per channel, however many panels listen); without Live, the service's events.
    // The request's queries on one dataset share one subscription to it.
    const liveSrv = this.grafanaLive();
    const channels = new Map<string, Observable<LiveEvent>>();
    const eventsOf = (dataset: string, since?: number): Observable<LiveEvent> => {
      if (!liveSrv) return this.sseChanges(dataset);
      let events = channels.get(dataset);
      if (!events) {
        events = dataSourceEvents(liveSrv, this.uid, dataset, since).pipe(share());
        channels.set(dataset, events);
      }
      return events;
    };
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
          feeds: datasetsIn(frames).map((dataset) => eventsOf(dataset)),
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
          feed: eventsOf(dataset),
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
    const range = { from: dateTime(span.from), to: dateTime(span.to) };
    return this.queryBackend({
      ...request,
      requestId: `${request.requestId}-${query.refId}-live`,
      range: { ...range, raw: range },
      interval: `${stepMs}ms`,
      intervalMs: stepMs,
      maxDataPoints: Math.max(1, Math.ceil((span.to - span.from) / stepMs)),
      // The query as it was answered (applying variables again changes nothing).
      targets: [query],
      skipQueryCache: false,
      // The inspector shows the panel's query, not every small update behind it.
      hideFromInspector: true,
    }).pipe(
      map((result): TouchedAnswer => {
        const error = result.errors[0];
        return error ? { error: error.message ?? 'LiveSync returned an error' } : { frames: result.data };
      }),
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

  /**
   * "Save & test": the backend's CheckHealth, which says in words what works and what does not.
   * Grafana's health has no warning status; the backend tells it in `details.verdict`.
   */
  override async testDatasource(): Promise<TestDataSourceResponse> {
    const health = (await this.callHealthCheck()) as HealthCheckResult | undefined;
    if (!health?.message) {
      return { status: 'error', message: "Grafana could not run the LiveSync backend's health check." };
    }
    if (health.status !== HealthStatus.OK) return { status: 'error', message: health.message };
    const verdict = (health.details as { verdict?: unknown } | undefined)?.verdict;
    return { status: verdict === 'warning' ? 'warning' : 'success', message: health.message };
  }

  /** Every dataset the service syncs, with its fields and status. */
  async getDatasets(): Promise<DatasetInfo[]> {
    const response = await this.resource<DatasetsResponse>('datasets');
    return response.datasets ?? [];
  }

  async getDataset(name: string): Promise<DatasetInfo> {
    const dataset = interpolateSingle(getTemplateSrv(), name);
    return this.resource<DatasetInfo>(`datasets/${encodeURIComponent(dataset)}`);
  }

  /** Known values of a dimension: for template variables and filter suggestions. */
  async getDimensionValues(dataset: string, dimension: string, search = '', limit = 100): Promise<string[]> {
    const templateSrv = getTemplateSrv();
    const name = interpolateSingle(templateSrv, dataset);
    const field = interpolateSingle(templateSrv, dimension);
    const params: Record<string, string | number> = { limit };
    if (search) params.q = search;
    const path = `datasets/${encodeURIComponent(name)}/values/${encodeURIComponent(field)}`;
    const response = await this.resource<ValuesResponse>(path, params);
    return response.values ?? [];
  }

  /** Template variable names, offered next to real values in the editors. */
  getVariableOptions(): string[] {
    return getTemplateSrv()
      .getVariables()
      .map((v) => `$${v.name}`);
  }

  /** A backend resource (`/api/datasources/uid/<uid>/resources/<path>`); errors are ours to word, so Grafana shows no toast. */
  private async resource<T>(path: string, params?: Record<string, string | number>): Promise<T> {
    try {
      return await this.getResource<T>(path, params, { showErrorAlert: false });
    } catch (err) {
      throw new Error(describeBackendError(err, path));
    }
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
