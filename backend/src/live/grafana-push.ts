import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExponentialBackoff, fullJitterGenerator, type IBackoff } from 'cockatiel';
import type { Logger } from 'pino';
import { CELL, type DatasetSpec } from '../config/dataset';
import type { Counter } from 'prom-client';
import type { FreshnessUpdate } from '../query/status-frames';
import type { Store } from '../store/types';
import type { ChangeEvent } from '../sync/engine';
import type { ChangeBus } from './bus';
import { line, type FieldValue } from './line-protocol';

export interface GrafanaLiveOptions {
  url: string;
  token?: string;
  tokenFile?: string;
  streamId: string;
  /** At most one push per dataset per this many milliseconds. */
  coalesceMs?: number;
  timeoutMs?: number;
  backoff?: { initialMs: number; maxMs: number };
  /** Attempts for one push before it is given up (a newer change replaces it anyway). */
  maxAttempts?: number;
}

interface Deps {
  bus: ChangeBus;
  store: Store;
  spec: (name: string) => DatasetSpec | undefined;
  lastSyncAt: (name: string) => number | null;
  pushes: Counter<'channel' | 'outcome'>;
  log: Logger;
  fetch?: typeof fetch;
  now?: () => number;
}

/** The measurement, and so the channel path, of a dataset's freshness updates: `<dataset>/freshness`. */
export function freshnessPath(dataset: string): string {
  return `${dataset}/freshness`;
}

type Pending = { kind: 'change'; event: ChangeEvent } | { kind: 'freshness'; update: FreshnessUpdate };

/** Grafana's channel rules: letters, digits, `_ - / . =`, at most 160 characters. */
export function liveChannel(streamId: string, dataset: string): string {
  const channel = `stream/${streamId}/${dataset}`;
  if (!/^[A-Za-z0-9_\-/.=]+$/.test(channel) || channel.length > 160) {
    throw new Error(`"${channel}" is not a valid Grafana Live channel`);
  }
  return channel;
}

/**
 * Pushes each dataset's changes to Grafana Live (`POST <url>/api/live/push/<streamId>`, one
 * measurement per dataset, so the channel is `stream/<streamId>/<dataset>`), and its
 * freshness updates to `stream/<streamId>/<dataset>/freshness`. Changes are merged per
 * dataset, a freshness update replaces the one before, and each channel is pushed at most
 * once per `coalesceMs`; pushes run beside the sync and never hold it up; a failed push is
 * retried with backoff until a newer one replaces it or the attempts run out.
 */
export class GrafanaLivePusher {
  /** By channel path (`<dataset>` or `<dataset>/freshness`). */
  private readonly pending = new Map<string, Pending>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly lastPushAt = new Map<string, number>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly endpoint: string;
  private readonly fetch: typeof fetch;
  private readonly now: () => number;
  private readonly listener = (event: ChangeEvent) => this.onChange(event);
  private readonly freshnessListener = (update: FreshnessUpdate) => this.onFreshness(update);
  private closed = false;

  constructor(
    private readonly options: GrafanaLiveOptions,
    private readonly deps: Deps,
  ) {
    this.endpoint = `${options.url.replace(/\/+$/, '')}/api/live/push/${encodeURIComponent(options.streamId)}`;
    this.fetch = deps.fetch ?? fetch;
    this.now = deps.now ?? Date.now;
    deps.bus.on('change', this.listener);
    deps.bus.on('freshness', this.freshnessListener);
  }

  private onChange(event: ChangeEvent): void {
    if (this.closed) return;
    const before = this.pending.get(event.dataset);
    this.pending.set(event.dataset, {
      kind: 'change',
      event:
        before?.kind === 'change'
          ? {
              ...event,
              from: Math.min(before.event.from, event.from),
              to: Math.max(before.event.to, event.to),
              upserts: before.event.upserts + event.upserts,
              deletes: before.event.deletes + event.deletes,
            }
          : event,
    });
    this.schedule(event.dataset);
  }

  private onFreshness(update: FreshnessUpdate): void {
    if (this.closed) return;
    this.pending.set(freshnessPath(update.dataset), { kind: 'freshness', update });
    this.schedule(freshnessPath(update.dataset));
  }

  private schedule(path: string): void {
    if (this.timers.has(path)) return;
    const since = this.now() - (this.lastPushAt.get(path) ?? 0);
    const wait = Math.max(0, (this.options.coalesceMs ?? 250) - since);
    this.timers.set(
      path,
      setTimeout(() => this.flush(path), wait),
    );
  }

  private flush(path: string): void {
    this.timers.delete(path);
    const pending = this.pending.get(path);
    if (!pending || this.closed) return;
    this.pending.delete(path);
    this.lastPushAt.set(path, this.now());
    const push = this.deliver(path, pending).finally(() => this.inflight.delete(push));
    this.inflight.add(push);
  }

  private async deliver(path: string, pending: Pending): Promise<void> {
    let backoff: IBackoff<unknown> | undefined;
    const factory = new ExponentialBackoff({
      generator: fullJitterGenerator,
      initialDelay: this.options.backoff?.initialMs ?? 200,
      maxDelay: this.options.backoff?.maxMs ?? 10_000,
    });
    let body: string | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        body ??= pending.kind === 'change' ? await this.body(pending.event) : freshnessLine(pending.update);
        await this.post(body);
        this.deps.pushes.inc({ channel: pending.kind, outcome: 'success' });
        return;
      } catch (err) {
        this.deps.pushes.inc({ channel: pending.kind, outcome: 'failure' });
        const superseded = this.pending.has(path);
        if (this.closed || superseded || attempt >= (this.options.maxAttempts ?? 5)) {
          this.deps.log.warn({ err, channel: path, attempt }, 'Grafana Live push failed');
          return;
        }
        backoff = (backoff ?? factory).next(undefined);
        await sleep(backoff.duration, undefined, { signal: this.abort.signal }).catch(() => undefined);
      }
    }
  }

  /** The change, plus the latest touched bucket's totals so a Live panel can chart it. */
  private async body(event: ChangeEvent): Promise<string> {
    const spec = this.deps.spec(event.dataset);
    const lastSync = this.deps.lastSyncAt(event.dataset);
    const fields: Record<string, FieldValue> = {
      version: { int: event.version },
      from: { int: event.from },
      to: { int: event.to },
      upserts: { int: event.upserts },
      deletes: { int: event.deletes },
      age_seconds: lastSync === null ? 0 : Math.max(0, (this.now() - lastSync) / 1000),
    };
    if (spec) {
      const bucket = event.to - spec.resolutionMs;
      const [total] = await this.deps.store.readRollups(spec.name, {
        tierMs: spec.resolutionMs,
        projection: 0,
        from: bucket,
        to: bucket + spec.resolutionMs,
      });
      fields['bucket_time'] = { int: bucket };
      fields['bucket_count'] = total?.cells[CELL.count] ?? 0;
      spec.metrics.forEach((m, i) => {
        fields[`bucket_sum_${m}`] = total?.cells[CELL.sum(i)] ?? 0;
      });
    }
    return line(event.dataset, fields, event.at);
  }

  private async token(): Promise<string> {
    if (this.options.token) return this.options.token;
    if (!this.options.tokenFile) throw new Error('grafanaLive needs a token or a tokenFile');
    // Read on every push: the token may be written after start-up, and may be rotated.
    const token = (await readFile(this.options.tokenFile, 'utf8')).trim();
    if (!token) throw new Error(`${this.options.tokenFile} is empty`);
    return token;
  }

  private async post(body: string): Promise<void> {
    const response = await this.fetch(this.endpoint, {
      method: 'POST',
      headers: { authorization: `Bearer ${await this.token()}`, 'content-type': 'text/plain' },
      body,
      signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.options.timeoutMs ?? 5_000)]),
    });
    if (!response.ok) throw new Error(`Grafana answered ${response.status} ${response.statusText}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.deps.bus.off('change', this.listener);
    this.deps.bus.off('freshness', this.freshnessListener);
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.abort.abort();
    await Promise.allSettled([...this.inflight]);
  }
}

/**
 * A freshness update as one line: the whole update as JSON in `json` (what the plugin reads),
 * and the state and flags as fields of their own for a Live Measurements panel. The set of
 * fields never changes, so the channel's schema does not either.
 */
export function freshnessLine(update: FreshnessUpdate): string {
  return line(
    freshnessPath(update.dataset),
    { state: update.state, stale: update.stale, incomplete: update.incomplete, json: JSON.stringify(update) },
    update.at,
  );
}
