/**
 * Freshness that stays true on an open dashboard: the service publishes each dataset's
 * freshness whenever what a panel shows of it changes (over Grafana Live or its server-sent
 * events), and ages grow on the browser's clock in between, so a data-age stat ticks and
 * turns red on time with auto-refresh off.
 */
import {
  type DataFrame,
  type DataQueryResponse,
  LoadingState,
  type QueryResultMetaNotice,
} from '@grafana/data';
import { Observable, Subscription } from 'rxjs';
import type { LiveEvent } from './changes';

/** A dataset's freshness as the service publishes it (its `FreshnessUpdate`). */
export interface DatasetFreshness {
  dataset: string;
  /** The service's clock when it was judged (epoch ms). */
  at: number;
  lastSyncAt: number | null;
  ageSeconds: number | null;
  state: string;
  stale: boolean;
  /** A resync after a store loss has not caught up: totals are partial. */
  incomplete: boolean;
  version: number;
  notice: QueryResultMetaNotice | null;
  /** The dataset's row of the freshness and sync-status frames, by column name. */
  row: Record<string, unknown>;
}

/** A freshness update out of JSON (an SSE event's data, a Grafana Live row); undefined when it is not one. */
export function parseFreshness(value: unknown): DatasetFreshness | undefined {
  const v = typeof value === 'string' ? parseJson(value) : value;
  if (!v || typeof v !== 'object') return undefined;
  const f = v as Partial<DatasetFreshness>;
  if (typeof f.dataset !== 'string' || typeof f.at !== 'number' || !f.row || typeof f.row !== 'object')
    return undefined;
  return {
    dataset: f.dataset,
    at: f.at,
    lastSyncAt: typeof f.lastSyncAt === 'number' ? f.lastSyncAt : null,
    ageSeconds: typeof f.ageSeconds === 'number' ? f.ageSeconds : null,
    state: typeof f.state === 'string' ? f.state : 'unknown',
    stale: f.stale === true,
    incomplete: f.incomplete === true,
    version: typeof f.version === 'number' ? f.version : 0,
    notice: f.notice && typeof f.notice.text === 'string' ? f.notice : null,
    row: f.row,
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * How far the service's clock is ahead of this browser's (ms), from an answer just received:
 * the service said the data was `ageSeconds` old at the moment it answered. Ages computed with
 * it do not depend on the two clocks agreeing. Undefined when the answer has no age.
 */
export function skewOf(frames: DataFrame[], receivedAt: number): number | undefined {
  for (const frame of frames) {
    const custom = frame.meta?.custom as { lastSyncAt?: unknown; ageSeconds?: unknown } | undefined;
    if (typeof custom?.lastSyncAt === 'number' && typeof custom.ageSeconds === 'number')
      return custom.lastSyncAt + custom.ageSeconds * 1000 - receivedAt;
    const last = frame.fields.find((f) => f.name === 'last_updated' || f.name === 'last_success');
    const age = frame.fields.find((f) => f.name === 'age_seconds');
    for (let i = 0; last && age && i < frame.length; i++) {
      const at = last.values[i];
      const seconds = age.values[i];
      if (typeof at === 'number' && typeof seconds === 'number') return at + seconds * 1000 - receivedAt;
    }
  }
  return undefined;
}

/** Seconds since the last sync at the service's `now`, to a tenth, as the service computes it. */
export function ageAt(lastSyncAt: number | null, serverNow: number): number | null {
  return lastSyncAt === null ? null : Math.round(Math.max(0, serverNow - lastSyncAt) / 100) / 10;
}

/** A metrics frame with a dataset's newer freshness: its meta and its notice (the service's only). */
export function withFreshness(frame: DataFrame, f: DatasetFreshness, serverNow: number): DataFrame {
  const custom = {
    ...(frame.meta?.custom ?? {}),
    lastSyncAt: f.lastSyncAt,
    ageSeconds: ageAt(f.lastSyncAt, serverNow),
    state: f.state,
    incomplete: f.incomplete,
  };
  const meta = { ...frame.meta, custom };
  if (f.notice) meta.notices = [f.notice];
  else delete meta.notices;
  return { ...frame, meta };
}

/** What a metrics panel shows of its dataset's freshness: a change of it is worth drawing again. */
export const shownOf = (f: DatasetFreshness): string =>
  JSON.stringify([f.notice?.text ?? null, f.incomplete]);

/** The dataset a freshness or status frame's rows are about, by row. */
function datasetsOf(frame: DataFrame): string[] {
  const column = frame.fields.find((f) => f.name === 'dataset');
  return column ? Array.from({ length: frame.length }, (_, i) => String(column.values[i])) : [];
}

/** Every dataset the frames are about: the rows of freshness and status frames. */
export function datasetsIn(frames: DataFrame[]): string[] {
  return [...new Set(frames.flatMap(datasetsOf))];
}

export interface FollowFreshnessOptions {
  /** The packet key: the query's own. */
  key: string;
  /** Freshness or sync-status frames, one row per dataset. */
  initial: DataFrame[];
  /** When the answer arrived, on this browser's clock; with its ages it tells the service's clock. */
  receivedAt: number;
  /** Each dataset's freshness updates (and the troubles of their stream). */
  feeds: Array<Observable<LiveEvent>>;
  /** Ages are drawn again at each value: once a second. */
  tick: Observable<unknown>;
  /** This browser's clock. */
  now: () => number;
  /** Freshness frames carry their datasets' notices; sync-status tables do not. */
  notices: boolean;
}

/**
 * Keeps freshness or sync-status frames current: each update replaces its dataset's cells
 * (the columns the frame has) and notice, and every tick the ages grow by the time that
 * passed. A stream in trouble shows as a warning; ages keep growing meanwhile, so a panel that
 * cannot hear the service drifts toward stale, never toward fresh.
 */
export function followFreshness(options: FollowFreshnessOptions): Observable<DataQueryResponse> {
  return new Observable<DataQueryResponse>((subscriber) => {
    const skew = skewOf(options.initial, options.receivedAt) ?? 0;
    const serverNow = () => options.now() + skew;
    let frames = options.initial;
    /** Each dataset's notice, as the answer had it (in the frame's meta) and as updates say. */
    const notices = new Map<string, QueryResultMetaNotice | null>();
    const problems = new Map<number, string>();

    const emit = () => {
      const warnings = [...new Set(problems.values())].map((text): QueryResultMetaNotice => ({
        severity: 'warning',
        text,
      }));
      const data = frames.map((frame) => {
        const aged = withAges(frame, serverNow());
        const own =
          options.notices && notices.size > 0
            ? datasetsOf(frame).flatMap((d) => notices.get(d) ?? [])
            : (frame.meta?.notices ?? []);
        const all = [...own, ...warnings];
        return { ...aged, meta: { ...aged.meta, notices: all } };
      });
      subscriber.next({ data, key: options.key, state: LoadingState.Streaming });
    };

    const apply = (f: DatasetFreshness) => {
      frames = frames.map((frame) => withRow(frame, f));
      if (notices.size === 0) {
        // The first update: the answer's notices are by dataset from now on.
        for (const frame of options.initial)
          for (const dataset of datasetsOf(frame))
            notices.set(dataset, frame.meta?.notices?.find((n) => n.text.startsWith(`${dataset}: `)) ?? null);
      }
      notices.set(f.dataset, f.notice);
    };

    const subscriptions = new Subscription();
    options.feeds.forEach((feed, i) =>
      subscriptions.add(
        feed.subscribe({
          next: (event) => {
            if (event.type === 'freshness') apply(event.freshness);
            else if (event.type === 'trouble') problems.set(i, event.message);
            else if (event.type === 'recovered') problems.delete(i);
            else return;
            emit();
          },
          error: (err: unknown) => {
            problems.set(i, `Live updates stopped: ${err instanceof Error ? err.message : String(err)}`);
            emit();
          },
        }),
      ),
    );
    subscriptions.add(options.tick.subscribe(() => emit()));
    return subscriptions;
  });
}

/** The frame with a dataset's row replaced by the update's cells, for the columns the frame has. */
function withRow(frame: DataFrame, f: DatasetFreshness): DataFrame {
  const row = datasetsOf(frame).indexOf(f.dataset);
  if (row < 0) return frame;
  return {
    ...frame,
    fields: frame.fields.map((field) => {
      if (!(field.name in f.row) || field.name === 'dataset') return field;
      const values = [...field.values];
      values[row] = f.row[field.name];
      return { ...field, values };
    }),
  };
}

/** The frame with every row's age as of the service's `now`, from its last sync. */
function withAges(frame: DataFrame, serverNow: number): DataFrame {
  const age = frame.fields.findIndex((f) => f.name === 'age_seconds');
  const last = frame.fields.find((f) => f.name === 'last_updated' || f.name === 'last_success');
  if (age < 0 || !last) return frame;
  const values = Array.from({ length: frame.length }, (_, i) => {
    const at = last.values[i];
    return ageAt(typeof at === 'number' ? at : null, serverNow);
  });
  return { ...frame, fields: frame.fields.map((f, i) => (i === age ? { ...f, values } : f)) };
}

export interface FollowNoticesOptions {
  key: string;
  /** The query's metrics frames. */
  initial: DataFrame[];
  receivedAt: number;
  /** The dataset's freshness updates. */
  feed: Observable<LiveEvent>;
  now: () => number;
}

/**
 * A metrics query that does not follow its data (Live off, or a range that does not end at
 * now) still follows its dataset's freshness: when the notice changes (stale, failing,
 * incomplete after a store loss, and back), its frames are sent again with the new one.
 */
export function followNotices(options: FollowNoticesOptions): Observable<DataQueryResponse> {
  const skew = skewOf(options.initial, options.receivedAt) ?? 0;
  return new Observable<DataQueryResponse>((subscriber) => {
    let frames = options.initial;
    let shown = shownOfFrames(frames);
    return options.feed.subscribe((event) => {
      if (event.type !== 'freshness') return;
      frames = frames.map((frame) => withFreshness(frame, event.freshness, options.now() + skew));
      const next = shownOf(event.freshness);
      if (next === shown) return;
      shown = next;
      subscriber.next({ data: frames, key: options.key, state: LoadingState.Done });
    });
  });
}

/** What metrics frames show of their freshness, as the service answered them. */
export function shownOfFrames(frames: DataFrame[]): string {
  const meta = frames[0]?.meta;
  const incomplete = (meta?.custom as { incomplete?: unknown } | undefined)?.incomplete === true;
  return JSON.stringify([meta?.notices?.[0]?.text ?? null, incomplete]);
}
