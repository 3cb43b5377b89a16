/**
 * Where a dataset's changes and freshness come from: Grafana Live (the service pushes to
 * `stream/<streamId>/<dataset>` and `stream/<streamId>/<dataset>/freshness`) or the service's
 * own server-sent events, read through the data-source proxy. Both become the same few events.
 */
import {
  type DataFrame,
  type DataFrameJSON,
  type DataQueryResponse,
  FieldType,
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
 * Changes over Grafana Live. The channel keeps its last messages and sends them to every new
 * subscriber; rows committed before the panel's answer (`at` ≤ `since`, the answer's last sync)
 * are in it already and are skipped, and so is any row seen before.
 */
export function grafanaLiveEvents(
  live: GrafanaLiveSrv,
  streamId: string,
  dataset: string,
  since: number | undefined,
): Observable<LiveEvent> {
  return defer(() => {
    const seen = new Set<string>();
    return grafanaLiveChannel(live, streamId, dataset, (frame) => {
      const events: LiveEvent[] = [];
      for (const row of changeRows(frame)) {
        const key = `${row.version}@${row.at}`;
        if (seen.has(key)) continue;
        remember(seen, key);
        if (since !== undefined && row.at <= since) continue;
        events.push({ type: 'change', from: row.from, to: row.to, version: row.version });
      }
      return events;
    });
  });
}

/**
 * Freshness updates over Grafana Live (`stream/<streamId>/<dataset>/freshness`, one row per
 * update, the whole update as JSON in its `json` field). Grafana sends the channel's last
 * message to each new subscriber; an update older than one already seen is skipped.
 */
export function grafanaLiveFreshness(
  live: GrafanaLiveSrv,
  streamId: string,
  dataset: string,
): Observable<LiveEvent> {
  return defer(() => {
    let latest = Number.NEGATIVE_INFINITY;
    return grafanaLiveChannel(live, streamId, `${dataset}/freshness`, (packetFrame) => {
      const events: LiveEvent[] = [];
      const frame = toFrame(packetFrame);
      const json = frame?.fields.find((f) => f.name === 'json')?.values ?? [];
      for (let i = 0; i < json.length; i++) {
        const freshness = parseFreshness(json[i]);
        if (!freshness || freshness.dataset !== dataset || freshness.at <= latest) continue;
        latest = freshness.at;
        events.push({ type: 'freshness', freshness });
      }
      return events;
    });
  });
}

/**
 * One Grafana Live channel as events: its packets' rows through `rows`, a channel error as
 * `trouble` and the next good packet as `recovered`; Grafana ends a channel's stream only for
 * good, so its end is said rather than left quiet.
 */
function grafanaLiveChannel(
  live: GrafanaLiveSrv,
  streamId: string,
  path: string,
  rows: (frame: DataQueryResponse['data'][number] | undefined) => LiveEvent[],
): Observable<LiveEvent> {
  let troubled = false;
  return live
    .getDataStream({
      addr: { scope: LiveChannelScope.Stream, stream: streamId, path },
      buffer: { maxLength: LIVE_BUFFER_ROWS },
    })
    .pipe(
      mergeMap((packet: DataQueryResponse): LiveEvent[] => {
        const events: LiveEvent[] = [];
        const error = packet.errors?.[0] ?? packet.error;
        if (error || packet.state === LoadingState.Error) {
          troubled = true;
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

interface ChangeRow {
  version: number;
  from: number;
  to: number;
  at: number;
}

/** The change rows of a Live packet's frame: a StreamingDataFrame or frame JSON. */
export function changeRows(data: unknown): ChangeRow[] {
  const frame = toFrame(data);
  if (!frame) return [];
  const column = (name: string) => frame.fields.find((f) => f.name === name)?.values;
  const time = frame.fields.find((f) => f.type === FieldType.time)?.values;
  const [version, from, to] = [column('version'), column('from'), column('to')];
  if (!version || !from || !to) return [];
  const rows: ChangeRow[] = [];
  for (let i = 0; i < frame.length; i++) {
    const row = {
      version: Number(version[i]),
      from: Number(from[i]),
      to: Number(to[i]),
      at: Number(time?.[i] ?? Number.NaN),
    };
    if (Number.isFinite(row.version) && Number.isFinite(row.from) && Number.isFinite(row.to)) rows.push(row);
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
    let troubled = false;

    const open = () => {
      const parser = new SseParser();
      const connection = new Subscription();
      all.add(connection);

      const drop = (message: string, retry: boolean) => {
        if (connection.closed) return;
        connection.unsubscribe();
        all.remove(connection);
        troubled = true;
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
        if (event === 'hello') {
          const hello = parseJson<Hello>(data);
          if (!hello) return;
          if (troubled) {
            troubled = false;
            subscriber.next({ type: 'recovered' });
          }
          subscriber.next({
            type: 'hello',
            version: isFiniteNumber(hello.version) ? hello.version : undefined,
            lastSyncAt: toEpochMs(hello.freshness?.lastSyncAt),
          });
          // Every (re)connection starts with the dataset's freshness: what a reconnect missed.
          const freshness = parseFreshness(hello.freshness);
          if (freshness) subscriber.next({ type: 'freshness', freshness });
        } else if (event === 'freshness') {
          const freshness = parseFreshness(data);
          if (freshness) subscriber.next({ type: 'freshness', freshness });
        } else if (event === 'change') {
          const change = parseJson<ChangeData>(data);
          if (!change || !isFiniteNumber(change.from) || !isFiniteNumber(change.to)) return;
          const version = isFiniteNumber(change.version) ? change.version : Number.NaN;
          subscriber.next({ type: 'change', from: change.from, to: change.to, version });
        }
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
