import {
  type AnnotationEvent,
  type AnnotationQuery,
  CoreApp,
  type DataFrame,
  type DataQuery,
  type DataQueryError,
  type DataQueryRequest,
  type DataQueryResponse,
  type DataSourceApi,
  DataTopic,
  LoadingState,
  type PanelData,
  type ScopedVars,
  type TimeRange,
  dateMath,
  getProcessedDataFrames,
  rangeUtil,
} from '@grafana/data';
import { toDataQueryError } from '@grafana/runtime';
import { type Observable, ReplaySubject, type Subscription, catchError, from, map, mergeMap, of } from 'rxjs';

let requestCounter = 100;
/** Grafana names panel requests Q100, Q101, …; a new request with the same id cancels the old one's fetches. */
export const nextRequestId = (prefix = 'Q') => `${prefix}${requestCounter++}`;

interface RunningQueryState {
  packets: Record<string, DataQueryResponse>;
  panelData: PanelData;
}

/**
 * Grafana's runRequest (public/app/features/query/state/runRequest.ts): calls the data
 * source's `query()`, folds its packets by `key` (a packet replaces the last one with its key,
 * so a streaming query updates in place), sorts annotation frames from series, turns any
 * error into `state: Error`, and recomputes a relative time range for streaming packets so the
 * window follows the clock.
 */
export function runRequest(
  datasource: DataSourceApi,
  request: DataQueryRequest,
  queryFunction?: (request: DataQueryRequest) => Observable<DataQueryResponse> | Promise<DataQueryResponse>,
): Observable<PanelData> {
  let state: RunningQueryState = {
    panelData: { state: LoadingState.Loading, series: [], request, timeRange: request.range },
    packets: {},
  };
  if (!request.targets.length) {
    request.endTime = Date.now();
    return of({ ...state.panelData, state: LoadingState.Done });
  }
  // A query left empty gets the data source's default query, as in Grafana's callQueryMethod.
  request.targets = request.targets.map((t) =>
    queryIsEmpty(t) ? { ...datasource.getDefaultQuery?.(CoreApp.PanelEditor), ...t } : t,
  );
  const response = queryFunction ? queryFunction(request) : datasource.query(request);
  return from(response as Observable<DataQueryResponse> | Promise<DataQueryResponse>).pipe(
    map((packet) => {
      if (!Array.isArray(packet.data))
        throw new Error(`Expected response data to be array, got ${typeof packet.data}.`);
      request.endTime = Date.now();
      state = processResponsePacket(packet, state);
      return state.panelData;
    }),
    catchError((err: unknown) =>
      of({
        ...state.panelData,
        state: LoadingState.Error,
        errors: [toDataQueryError(err as DataQueryError)],
      }),
    ),
  );
}

function queryIsEmpty(query: DataQuery): boolean {
  const { refId: _r, hide: _h, datasource: _d, key: _k, ...rest } = query as DataQuery & { key?: string };
  return Object.keys(rest).length === 0;
}

export function processResponsePacket(
  packet: DataQueryResponse,
  state: RunningQueryState,
): RunningQueryState {
  const request = state.panelData.request!;
  const packets = { ...state.packets };
  const key = packet.key ?? packet.data?.[0]?.refId ?? 'A';
  packets[key] = packet;

  let loadingState = packet.state || LoadingState.Done;
  let error: DataQueryError | undefined;
  let errors: DataQueryError[] | undefined;
  const series: DataFrame[] = [];
  const annotations: DataFrame[] = [];
  for (const p of Object.values(packets)) {
    if (p.error || p.errors?.length) {
      loadingState = LoadingState.Error;
      error = p.error;
      errors = p.errors;
    }
    for (const item of p.data as DataFrame[]) {
      if (item.meta?.dataTopic === DataTopic.Annotations) annotations.push(item);
      else series.push(item);
    }
  }
  const panelData: PanelData = {
    state: loadingState,
    series,
    annotations,
    request,
    timeRange: requestTimeRange(request, loadingState),
  };
  if (error) panelData.error = error;
  if (errors) panelData.errors = errors;
  return { packets, panelData };
}

function requestTimeRange(request: DataQueryRequest, state: LoadingState): TimeRange {
  const range = request.range;
  if (typeof range.raw.from !== 'string' || state !== LoadingState.Streaming) return range;
  return { ...range, from: dateMath.parse(range.raw.from, false)!, to: dateMath.parse(range.raw.to, true)! };
}

/**
 * Grafana's preProcessPanelData: while a new request loads without data yet, the panel keeps
 * showing its last result (with the loading state); frames are normalised.
 */
export function preProcessPanelData(data: PanelData, lastResult?: PanelData): PanelData {
  if (data.state === LoadingState.Loading && data.series.length === 0) {
    return { ...(lastResult ?? data), state: LoadingState.Loading, request: data.request };
  }
  return {
    ...data,
    series: getProcessedDataFrames(data.series),
    annotations: getProcessedDataFrames(data.annotations ?? []),
  };
}

export interface QueryRunnerOptions {
  datasource: DataSourceApi;
  queries: DataQuery[];
  timeRange: TimeRange;
  /** Grafana passes the panel's width in pixels when the panel sets none. */
  maxDataPoints: number;
  minInterval?: string;
  panelId: number;
  panelName: string;
  panelPluginId: string;
  dashboardUID: string;
  timezone: string;
  app?: CoreApp;
  scopedVars?: ScopedVars;
}

/**
 * Grafana's PanelQueryRunner: builds the DataQueryRequest a panel sends (request id, range and
 * raw range, interval from the range and max data points, `__interval`/`__interval_ms`, the data
 * source's ref on every target), runs it, and publishes PanelData, keeping the last result while
 * a new run loads. A new run unsubscribes the previous one (which cancels its fetches and
 * streams), as a refresh does in Grafana.
 */
export class PanelQueryRunner {
  private readonly subject = new ReplaySubject<PanelData>(1);
  private subscription: Subscription | undefined;
  private lastResult: PanelData | undefined;
  lastRequest: DataQueryRequest | undefined;

  get(): Observable<PanelData> {
    return this.subject.asObservable();
  }

  run(options: QueryRunnerOptions): void {
    const { datasource, timeRange } = options;
    const norm = rangeUtil.calculateInterval(
      timeRange,
      options.maxDataPoints,
      options.minInterval ?? datasource.interval,
    );
    const request: DataQueryRequest = {
      app: options.app ?? CoreApp.Dashboard,
      requestId: nextRequestId(),
      timezone: options.timezone,
      panelId: options.panelId,
      panelName: options.panelName,
      panelPluginId: options.panelPluginId,
      dashboardUID: options.dashboardUID,
      range: timeRange,
      rangeRaw: timeRange.raw,
      interval: norm.interval,
      intervalMs: norm.intervalMs,
      targets: options.queries.map((q) => ({
        ...structuredClone(q),
        datasource: q.datasource ?? datasource.getRef(),
      })),
      maxDataPoints: options.maxDataPoints,
      scopedVars: {
        ...options.scopedVars,
        __interval: { text: norm.interval, value: norm.interval },
        __interval_ms: { text: String(norm.intervalMs), value: norm.intervalMs },
      },
      startTime: Date.now(),
      filters: [],
    };
    this.lastRequest = request;
    this.subscription?.unsubscribe();
    this.subscription = runRequest(datasource, request).subscribe((data) => {
      const processed = preProcessPanelData(data, this.lastResult);
      this.lastResult = processed;
      this.subject.next(processed);
    });
  }

  cancel(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    if (this.lastResult && this.lastResult.state !== LoadingState.Done) {
      this.lastResult = { ...this.lastResult, state: LoadingState.Done };
      this.subject.next(this.lastResult);
    }
  }

  destroy(): void {
    this.subscription?.unsubscribe();
    this.subject.complete();
  }
}

/**
 * Grafana's executeAnnotationQuery for a data source with annotation support: prepare the
 * saved annotation, turn it into a query, run it like a panel query (interval from the window
 * width, `__annotation` in scoped vars), mark the frames as annotations and let the data source
 * turn them into events.
 */
export function executeAnnotationQuery(
  datasource: DataSourceApi,
  annotation: AnnotationQuery,
  range: TimeRange,
  timezone: string,
): Observable<{ events: AnnotationEvent[]; error?: DataQueryError }> {
  const support = datasource.annotations;
  if (!support?.prepareQuery || !support.processEvents) return of({ events: [] });
  const saved: AnnotationQuery = { ...support.getDefaultQuery?.(), ...annotation } as AnnotationQuery;
  const prepared = support.prepareAnnotation ? support.prepareAnnotation(saved) : saved;
  const query = support.prepareQuery(prepared);
  if (!query) return of({ events: [] });
  const maxDataPoints = window.innerWidth || document.documentElement.clientWidth;
  const interval = rangeUtil.calculateInterval(range, maxDataPoints, datasource.interval);
  const request: DataQueryRequest = {
    startTime: Date.now(),
    requestId: nextRequestId('AQ'),
    range,
    rangeRaw: range.raw,
    maxDataPoints,
    interval: interval.interval,
    intervalMs: interval.intervalMs,
    scopedVars: {
      __interval: { text: interval.interval, value: interval.interval },
      __interval_ms: { text: String(interval.intervalMs), value: interval.intervalMs },
      __annotation: { text: prepared.name, value: prepared },
    },
    app: CoreApp.Dashboard,
    timezone,
    targets: [{ ...query, refId: 'Anno' }],
  };
  return runRequest(datasource, request).pipe(
    mergeMap((panelData) => {
      const error = panelData.errors?.[0] ?? panelData.error;
      const frames = panelData.series.length ? panelData.series : (panelData.annotations ?? []);
      if (!frames.length) return of(error ? { events: [], error } : { events: [] });
      for (const frame of frames) frame.meta = { ...frame.meta, dataTopic: DataTopic.Annotations };
      return support.processEvents!(prepared, frames).pipe(
        map((events) => (error ? { events: events ?? [], error } : { events: events ?? [] })),
      );
    }),
  );
}
