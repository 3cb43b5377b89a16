import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExponentialBackoff, fullJitterGenerator, type IBackoff } from 'cockatiel';
import type { Logger } from 'pino';
import { CELL, type DatasetSpec } from '../config/dataset';
import type { Counter } from 'prom-client';
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
  pushes: Counter<'outcome'>;
  log: Logger;
  fetch?: typeof fetch;
  now?: () => number;
}

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
 * measurement per dataset, so the channel is `stream/<streamId>/<dataset>`). Changes are
 * merged per dataset and pushed at most once per `coalesceMs`; pushes run beside the sync
 * and never hold it up; a failed push is retried with backoff until a newer change
 * replaces it or the attempts run out.
 */
export class GrafanaLivePusher {
  private readonly pending = new Map<string, ChangeEvent>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly lastPushAt = new Map<string, number>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly endpoint: string;
  private readonly fetch: typeof fetch;
  private readonly now: () => number;
  private readonly listener = (event: ChangeEvent) => this.onChange(event);
  private closed = false;

  constructor(
    private readonly options: GrafanaLiveOptions,
    private readonly deps: Deps,
  ) {
    this.endpoint = `${options.url.replace(/\/+$/, '')}/api/live/push/${encodeURIComponent(options.streamId)}`;
    this.fetch = deps.fetch ?? fetch;
    this.now = deps.now ?? Date.now;
    deps.bus.on('change', this.listener);
  }

  private onChange(event: ChangeEvent): void {
    if (this.closed) return;
    const before = this.pending.get(event.dataset);
    this.pending.set(
      event.dataset,
      before
        ? {
            ...event,
            from: Math.min(before.from, event.from),
            to: Math.max(before.to, event.to),
            upserts: before.upserts + event.upserts,
            deletes: before.deletes + event.deletes,
          }
        : event,
    );
    if (this.timers.has(event.dataset)) return;
    const since = this.now() - (this.lastPushAt.get(event.dataset) ?? 0);
    const wait = Math.max(0, (this.options.coalesceMs ?? 250) - since);
    this.timers.set(
      event.dataset,
      setTimeout(() => this.flush(event.dataset), wait),
    );
  }

  private flush(dataset: string): void {
    this.timers.delete(dataset);
    const event = this.pending.get(dataset);
    if (!event || this.closed) return;
    this.pending.delete(dataset);
    this.lastPushAt.set(dataset, this.now());
    const push = this.deliver(event).finally(() => this.inflight.delete(push));
    this.inflight.add(push);
  }

  private async deliver(event: ChangeEvent): Promise<void> {
    let backoff: IBackoff<unknown> | undefined;
    const factory = new ExponentialBackoff({
      generator: fullJitterGenerator,
      initialDelay: this.options.backoff?.initialMs ?? 200,
      maxDelay: this.options.backoff?.maxMs ?? 10_000,
    });
    let body: string | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        body ??= await this.body(event);
        await this.post(body);
        this.deps.pushes.inc({ outcome: 'success' });
        return;
      } catch (err) {
        this.deps.pushes.inc({ outcome: 'failure' });
        const superseded = this.pending.has(event.dataset);
        if (this.closed || superseded || attempt >= (this.options.maxAttempts ?? 5)) {
          this.deps.log.warn({ err, dataset: event.dataset, attempt }, 'Grafana Live push failed');
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
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.abort.abort();
    await Promise.allSettled([...this.inflight]);
  }
}
