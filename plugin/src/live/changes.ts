/**
 * Where a dataset's changes and freshness come from: Grafana Live, on the data source's
 * `ds/<uid>/<dataset>` channel that its backend feeds from the service's server-sent events, or,
 * when Grafana runs without Live, those events read through the data-source proxy. Both become
 * the same few events.
 */
import {
  type DataFrame,
  type DataFrameJSON,
  type DataQueryResponse,
  type LiveChannelAddress,
  LiveChannelScope,
  LoadingState,
  dataFrameFromJSON,
} from '@grafana/data';
import { type BackendSrv, type FetchError, type GrafanaLiveSrv, isFetchError } from '@grafana/runtime';
import {
  EMPTY,
  Observable,
  type SchedulerLike,
  Subscription,
  asyncScheduler,
  catchError,
  defer,
  endWith,
  mergeMap,
  of,
} from 'rxjs';
import { type DatasetFreshness, parseFreshness } from './freshness';
import { SseParser } from './sse';

export type LiveEvent =
  /** A committed batch touched these base buckets: [from, to) in epoch ms. */
  | { type: 'change'; from: number; to: number; version: number }
  /**
   * The service's greeting on every (re)connection of the event stream: its data version and
   * last sync then. A follower compares them with what it knows to tell whether it missed changes.
   */
  | { type: 'hello'; version: number | undefined; lastSyncAt: number | undefined }
  /** The stream has a problem; updates may lag or have stopped. */
  | { type: 'trouble'; message: string }
  /** The problem is over. */
  | { type: 'recovered' }
  /** The dataset's freshness changed (state, last success, staleness, completeness, notice). */
  | { type: 'freshness'; freshness: DatasetFreshness };

/** The reconnection delay until the service names one with `retry:`. */
export const DEFAULT_RETRY_MS = 3000;
/** Rows Grafana Live keeps per channel for us: enough for the bursts between two packets. */
const LIVE_BUFFER_ROWS = 100;
/** Changes remembered to skip the rows Grafana Live sends again (on subscribe, after errors). */
const SEEN_LIMIT = 1000;

/**
 * A dataset's events over Grafana Live, on the data source's own channel `ds/<uid>/<dataset>`:
 * the plugin's backend (RunStream) follows the service's server-sent events and sends each as a
 * row (time, event, version, from, to, json), plus `trouble` rows while the service cannot be
 * reached. Grafana shares one channel among its subscribers and hands a newcomer what the channel
 * has buffered, so rows seen before are skipped, and so are changes committed before the panel's
 * answer (`at` ≤ `since`, the answer's last sync: they are in it already).
 */
export function dataSourceEvents(
  live: GrafanaLiveSrv,
  uid: string,
  dataset: string,
  since: number | undefined,
): Observable<LiveEvent> {
  return defer(() => {
    const seen = new Set<string>();
    const decoder = new ServiceEvents();
    return grafanaLiveChannel(
      live,
      { scope: LiveChannelScope.DataSource, stream: uid, path: dataset },
      decoder,
      (frame) => {
        const events: LiveEvent[] = [];
        for (const row of eventRows(frame)) {
          const key = `${row.at}|${row.event}|${row.json}`;
          if (seen.has(key)) continue;
          remember(seen, key);
          if (row.event === 'change' && since !== undefined && row.at <= since) continue;
          events.push(...decoder.decode(row.event, row.json));
        }
        return events;
      },
    );
  });
}

/**
 * What the service's events mean to a follower, whichever way they came (its server-sent events
 * through the proxy, or the backend's rows on a `ds/` channel): `hello` opens every connection
 * (and ends a trouble), `change` names touched buckets, `freshness` a dataset's new freshness.
 */
export class ServiceEvents {
  /** The way the events come is in trouble: the next `hello` means it recovered. */
  troubled = false;
  /** Freshness updates older than one seen are skipped (a channel's buffer sends them again). */
  private latestFreshness = Number.NEGATIVE_INFINITY;

  decode(event: string, data: string): LiveEvent[] {
    if (event === 'hello') {
      const hello = parseJson<Hello>(data);
      if (!hello) return [];
      const events: LiveEvent[] = [];
      if (this.troubled) {
        this.troubled = false;
        events.push({ type: 'recovered' });
      }
      events.push({
        type: 'hello',
        version: isFiniteNumber(hello.version) ? hello.version : undefined,
        lastSyncAt: toEpochMs(hello.freshness?.lastSyncAt),
      });
      // Every (re)connection starts with the dataset's freshness: what a reconnect missed.
      return [...events, ...this.freshness(hello.freshness)];
    }
    if (event === 'freshness') return this.freshness(data);
    if (event === 'change') {
      const change = parseJson<ChangeData>(data);
      if (!change || !isFiniteNumber(change.from) || !isFiniteNumber(change.to)) return [];
      const version = isFiniteNumber(change.version) ? change.version : Number.NaN;
      return [{ type: 'change', from: change.from, to: change.to, version }];
    }
    if (event === 'trouble') {
      this.troubled = true;
      const message = parseJson<{ message?: unknown }>(data)?.message;
      return [
        { type: 'trouble', message: typeof message === 'string' ? message : 'LiveSync is unreachable' },
      ];
    }
    return [];
  }

  private freshness(value: unknown): LiveEvent[] {
    const freshness = parseFreshness(value);
    if (!freshness || freshness.at < this.latestFreshness) return [];
    this.latestFreshness = freshness.at;
    return [{ type: 'freshness', freshness }];
  }
}

/**
 * One Grafana Live channel as events: its packets' rows through `rows`, a channel error as
 * `trouble` and the next good packet as `recovered`; Grafana ends a channel's stream only for
 * good, so its end is said rather than left quiet.
 */
function grafanaLiveChannel(
  live: GrafanaLiveSrv,
  addr: LiveChannelAddress,
  decoder: ServiceEvents,
  rows: (frame: DataQueryResponse['data'][number] | undefined) => LiveEvent[],
): Observable<LiveEvent> {
  let troubled = false;
  return live.getDataStream({ addr, buffer: { maxLength: LIVE_BUFFER_ROWS } }).pipe(
    mergeMap((packet: DataQueryResponse): LiveEvent[] => {
      const events: LiveEvent[] = [];
      const error = packet.errors?.[0] ?? packet.error;
      if (error || packet.state === LoadingState.Error) {
        troubled = true;
        decoder.troubled = true;
        events.push({ type: 'trouble', message: `Grafana Live: ${error?.message || 'channel error'}` });
      } else if (troubled) {
        troubled = false;
        events.push({ type: 'recovered' });
      }
      return [...events, ...rows(packet.data?.[0])];
    }),
    endWith<LiveEvent>({ type: 'trouble', message: 'Grafana Live closed the channel; refresh to resume' }),
    catchError((err: unknown) =>
      of<LiveEvent>({ type: 'trouble', message: `Grafana Live: ${messageOf(err)}` }),
    ),
  );
}

function remember(seen: Set<string>, key: string): void {
  seen.add(key);
  if (seen.size > SEEN_LIMIT) {
    const oldest = seen.values().next().value;
    if (oldest !== undefined) seen.delete(oldest);
  }
}

interface EventRow {
  /** When the backend sent it (epoch ms). */
  at: number;
  event: string;
  /** The event's data, as the service sent it. */
  json: string;
}

/** The rows of a `ds/` channel packet's frame (a StreamingDataFrame or frame JSON). */
export function eventRows(data: unknown): EventRow[] {
  const frame = toFrame(data);
  if (!frame) return [];
  const column = (name: string) => frame.fields.find((f) => f.name === name)?.values;
  const [time, event, json] = [column('time'), column('event'), column('json')];
  if (!event || !json) return [];
  const rows: EventRow[] = [];
  for (let i = 0; i < frame.length; i++) {
    if (typeof event[i] !== 'string' || typeof json[i] !== 'string') continue;
    rows.push({ at: Number(time?.[i] ?? Number.NaN), event: event[i] as string, json: json[i] as string });
  }
  return rows;
}

function toFrame(data: unknown): DataFrame | undefined {
  if (!data || typeof data !== 'object') return undefined;
  if (Array.isArray((data as DataFrame).fields)) return data as DataFrame;
  if ('schema' in data || 'data' in data) return dataFrameFromJSON(data as DataFrameJSON);
  return undefined;
}

export interface SseOptions {
  /** The events endpoint, through the data-source proxy. */
  url: string;
  /** Words for a failed request (the data source's own). */
  describe: (err: unknown) => string;
  /** For tests: when reconnect timers fire. */
  scheduler?: SchedulerLike;
}

interface Hello {
  version?: number;
  freshness?: { lastSyncAt?: number | string | null };
}

interface ChangeData {
  version?: number;
  from?: number;
  to?: number;
}

/**
 * Changes over the service's server-sent events (`GET /api/datasets/:name/events`), read with
 * BackendSrv's chunked() since EventSource cannot go through Grafana's fetch pipeline. Like
 * EventSource it reconnects after the `retry:` delay when the stream ends or the network
 * fails; a 4xx is final. Nothing here depends on who listens, so one stream can serve every
 * panel on the dataset.
 */
export function sseEvents(backendSrv: BackendSrv, options: SseOptions): Observable<LiveEvent> {
  const scheduler = options.scheduler ?? asyncScheduler;
  return new Observable<LiveEvent>((subscriber) => {
    const all = new Subscription();
    let retryMs = DEFAULT_RETRY_MS;
    const decoder = new ServiceEvents();

    const open = () => {
      const parser = new SseParser();
      const connection = new Subscription();
      all.add(connection);

      const drop = (message: string, retry: boolean) => {
        if (connection.closed) return;
        connection.unsubscribe();
        all.remove(connection);
        decoder.troubled = true;
        if (!retry) {
          subscriber.next({ type: 'trouble', message });
          subscriber.complete();
          return;
        }
        subscriber.next({
          type: 'trouble',
          message: `${message}; reconnecting in ${Math.round(retryMs / 100) / 10} s`,
        });
        const timer = scheduler.schedule(() => {
          all.remove(timer);
          open();
        }, retryMs);
        all.add(timer);
      };

      const onEvent = (event: string, data: string) => {
        for (const e of decoder.decode(event, data)) subscriber.next(e);
      };

      connection.add(
        backendSrv
          .chunked({
            url: options.url,
            method: 'GET',
            headers: { Accept: 'text/event-stream' },
            showErrorAlert: false,
          })
          .pipe(
            mergeMap((response) => {
              if (!response.ok) {
                const error: FetchError = {
                  status: response.status,
                  statusText: response.statusText,
                  data: decodeBody(response.data),
                  config: response.config,
                };
                throw error;
              }
              return response.data ? [response.data] : EMPTY;
            }),
          )
          .subscribe({
            next: (chunk) => {
              for (const event of parser.push(chunk)) {
                if (connection.closed) return;
                onEvent(event.event, event.data);
              }
              if (parser.retryMs !== undefined) retryMs = parser.retryMs;
            },
            error: (err: unknown) => drop(options.describe(err), retryable(err)),
            complete: () => drop('LiveSync closed the event stream', true),
          }),
      );
    };

    open();
    return all;
  });
}

function retryable(err: unknown): boolean {
  if (!isFetchError(err)) return true;
  if (err.cancelled) return false;
  return err.status === 0 || err.status === 429 || err.status >= 500;
}

function decodeBody(data: Uint8Array | undefined): unknown {
  if (!data) return undefined;
  const text = new TextDecoder().decode(data);
  return parseJson(text) ?? text;
}

function parseJson<T>(text: string): T | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as T) : undefined;
  } catch {
    return undefined;
  }
}

const isFiniteNumber = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value);

function toEpochMs(value: number | string | null | undefined): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return undefined;
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? undefined : parsed;
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object' && 'message' in err && typeof err.message === 'string')
    return err.message;
  return String(err);
}
