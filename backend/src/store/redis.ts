import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions, type Result } from 'ioredis';
import { projectionDimensions, type DatasetSpec } from '../config/dataset';
import { decodeGroup, encodeGroup, encodeValue } from './groups';
import type {
  ApplyBatch,
  ApplyResult,
  DistinctRead,
  ResyncMark,
  RollupGroup,
  RollupRead,
  Store,
  SyncEvent,
  SyncRegion,
  SyncState,
} from './types';
import { STAMP_MAX_BLOCKS, StoreError, StoreUnavailableError } from './types';

const EVENTS_KEPT = 1000;
const LITTLE_ENDIAN = endianness() === 'LE';
const TRIM_SLICE = 200;
/** Keys that describe a dataset's history rather than its data: kept when the data is reset. */
const KEPT_ON_RESET = ['status', 'ev', 'rg'];

interface Registered {
  spec: DatasetSpec;
  prefix: string;
  layout: string;
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    livesyncApply(
      state: string,
      prefix: string,
      generation: string,
      layout: string,
      batch: string,
    ): Result<string[], Context>;
    livesyncResync(state: string, generation: string, mark: string): Result<number, Context>;
    livesyncTrim(
      state: string,
      prefix: string,
      cutoff: number,
      layout: string,
      limit: number,
    ): Result<[number, number], Context>;
  }
}

function script(name: string): string {
  // Lua files sit beside the sources and are copied next to the compiled output.
  for (const dir of [join(__dirname, 'lua'), join(__dirname, '../../src/store/lua')]) {
    try {
      return readFileSync(join(dir, name), 'utf8');
    } catch {
      // try the next place
    }
  }
  throw new Error(`Lua script ${name} not found`);
}

export function redisOptions(): RedisOptions {
  return {
    // Requests fail fast while Redis is away (a clear 503, never a hang); the sync
    // engine retries on its own schedule, and the client keeps reconnecting.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 10_000,
    lazyConnect: true,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  };
}

export class RedisStore implements Store {
  readonly kind = 'redis';
  private readonly datasets = new Map<string, Registered>();

  constructor(
    readonly redis: Redis,
    private readonly prefix: string,
  ) {
    redis.defineCommand('livesyncApply', { numberOfKeys: 1, lua: script('apply.lua') });
    redis.defineCommand('livesyncTrim', { numberOfKeys: 1, lua: script('trim.lua') });
    redis.defineCommand('livesyncResync', { numberOfKeys: 1, lua: script('resync.lua') });
  }

  /** Connects and waits until Redis answers, so start-up fails loudly on a wrong URL. */
  static async connect(url: string, prefix: string): Promise<RedisStore> {
    const redis = new Redis(url, redisOptions());
    // Without a listener ioredis reports every failed reconnect as an unhandled error.
    redis.on('error', () => undefined);
    try {
      await redis.connect();
    } catch (err) {
      redis.disconnect();
      throw new StoreUnavailableError(`cannot connect to Redis: ${(err as Error).message}`, { cause: err });
    }
    return new RedisStore(redis, prefix);
  }

  private dataset(name: string): Registered {
    const found = this.datasets.get(name);
    if (!found) throw new Error(`dataset ${name} is not registered with the store`);
    return found;
  }

  private keyPrefix(dataset: string): string {
    return `${this.prefix}:{${dataset}}:`;
  }

  async register(spec: DatasetSpec): Promise<void> {
    const { tiers, projections, fieldCount, blockBuckets } = spec.layout;
    const layout = JSON.stringify({
      tiers,
      masks: projections,
      dims: projections.map((mask) => projectionDimensions(mask, spec.dimensions.length).map((i) => i + 1)),
      F: fieldCount,
      M: spec.metrics.length,
      K: spec.distinct.length,
      B: blockBuckets,
    });
    this.datasets.set(spec.name, { spec, prefix: this.keyPrefix(spec.name), layout });
  }

  async readState(dataset: string): Promise<SyncState | null> {
    const state = await this.call(() => this.redis.hgetall(`${this.dataset(dataset).prefix}state`));
    if (!state.gen) return null;
    return {
      generation: state.gen,
      position:
        state.cursor !== undefined && state.cursorId !== undefined
          ? { cursor: state.cursor, id: state.cursorId }
          : null,
      version: Number(state.version ?? 0),
      records: Number(state.records ?? 0),
      resync: state.resync ? (JSON.parse(state.resync) as ResyncMark) : null,
    };
  }

  async readGeneration(dataset: string): Promise<string | null> {
    return this.call(() => this.redis.hget(`${this.dataset(dataset).prefix}state`, 'gen'));
  }

  async writeResync(dataset: string, generation: string, resync: ResyncMark | null): Promise<boolean> {
    const key = `${this.dataset(dataset).prefix}state`;
    const mark = resync ? JSON.stringify(resync) : '';
    return (await this.call(() => this.redis.livesyncResync(key, generation, mark))) === 1;
  }

  async resetDataset(dataset: string, resync?: ResyncMark): Promise<SyncState> {
    const { prefix } = this.dataset(dataset);
    const kept = new Set(KEPT_ON_RESET.map((k) => prefix + k));
    await this.call(async () => {
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        const doomed = keys.filter((k) => !kept.has(k));
        if (doomed.length > 0) await this.redis.unlink(...doomed);
      } while (cursor !== '0');
    });
    const generation = randomUUID();
    const fields = {
      gen: generation,
      version: 0,
      records: 0,
      ...(resync ? { resync: JSON.stringify(resync) } : {}),
    };
    await this.call(() => this.redis.hset(`${prefix}state`, fields));
    return { generation, position: null, version: 0, records: 0, resync: resync ?? null };
  }

  async applyBatch(dataset: string, batch: ApplyBatch): Promise<ApplyResult> {
    const { prefix, layout } = this.dataset(dataset);
    const payload = JSON.stringify({
      records: batch.records.map((r) => [
        r.id,
        r.time,
        r.deleted,
        r.dims.map(encodeValue),
        r.metrics.map((v) => (v === null || !Number.isFinite(v) ? null : v)),
        r.distinct,
      ]),
      cursor: batch.position?.cursor ?? null,
      cursorId: batch.position?.id ?? null,
      cutoff: batch.cutoffMs,
    });
    const reply = await this.call(() =>
      this.redis.livesyncApply(`${prefix}state`, prefix, batch.generation, layout, payload),
    );
    if (reply[0] !== 'ok') return { applied: false, reason: 'state-lost' };
    const [, version, upserts, deletes, unchanged, from, to] = reply;
    return {
      applied: true,
      version: Number(version),
      upserts: Number(upserts),
      deletes: Number(deletes),
      unchanged: Number(unchanged),
      touchedFrom: from ? Number(from) : null,
      touchedTo: to ? Number(to) : null,
    };
  }

  async trim(dataset: string, cutoffMs: number): Promise<number> {
    const { prefix, layout } = this.dataset(dataset);
    let removed = 0;
    for (;;) {
      const [count, more] = await this.call(() =>
        this.redis.livesyncTrim(`${prefix}state`, prefix, cutoffMs, layout, TRIM_SLICE),
      );
      removed += count;
      if (!more) return removed;
    }
  }

  async dataStamp(dataset: string, from: number, to: number): Promise<string> {
    const { prefix, spec } = this.dataset(dataset);
    const blockMs = spec.resolutionMs * spec.layout.blockBuckets;
    const first = Math.floor(from / blockMs);
    const count = Math.max(0, Math.floor((to - 1) / blockMs) - first + 1);
    if (count > STAMP_MAX_BLOCKS) {
      const [generation, version] = await this.call(() =>
        this.redis.hmget(`${prefix}state`, 'gen', 'version'),
      );
      return `${generation ?? 'none'}:v${version ?? 0}`;
    }
    const blocks = Array.from({ length: count }, (_, i) => String(first + i));
    const [generation, versions] = await this.call(() =>
      Promise.all([
        this.redis.hget(`${prefix}state`, 'gen'),
        blocks.length > 0 ? this.redis.hmget(`${prefix}bv`, ...blocks) : Promise.resolve([]),
      ]),
    );
    const newest = versions.reduce((max, v) => Math.max(max, v === null ? 0 : Number(v)), 0);
    return `${generation ?? 'none'}:${newest}`;
  }

  async readGroups(dataset: string, projection: number): Promise<(string | null)[][]> {
    const { prefix, spec } = this.dataset(dataset);
    const size = projectionDimensions(projection, spec.dimensions.length).length;
    const keys = await this.call(() => this.redis.smembers(`${prefix}g:${projection}`));
    return keys.map((k) => decodeGroup(k, size));
  }

  async readRollups(dataset: string, read: RollupRead): Promise<RollupGroup[]> {
    const { prefix, spec } = this.dataset(dataset);
    const { fieldCount: F, blockBuckets: B } = spec.layout;
    const groups = (read.groups ?? (await this.readGroups(dataset, read.projection))).filter(
      (g) => !read.accept || read.accept(g),
    );
    if (groups.length === 0) return [];
    const first = read.from / read.tierMs;
    const count = Math.max(0, Math.ceil((read.to - read.from) / read.tierMs));
    const cellBytes = F * 8;
    const pipeline = this.redis.pipeline();
    const placements: { group: number; at: number }[] = [];
    groups.forEach((values, g) => {
      const group = encodeGroup(values);
      for (let idx = first; idx < first + count;) {
        const block = Math.floor(idx / B);
        const stop = Math.min(first + count - 1, (block + 1) * B - 1);
        const key = `${prefix}r:${read.tierMs}:${read.projection}:${group}:${block}`;
        pipeline.getrangeBuffer(key, (idx - block * B) * cellBytes, (stop - block * B + 1) * cellBytes - 1);
        placements.push({ group: g, at: (idx - first) * F });
        idx = stop + 1;
      }
    });
    const replies = await this.call(() => pipeline.exec());
    const out = groups.map((values) => ({ values, cells: new Float64Array(count * F) }));
    replies?.forEach(([err, buf], i) => {
      if (err) throw err;
      const data = buf as Buffer;
      const place = placements[i]!;
      const cells = out[place.group]!.cells;
      const whole = data.length - (data.length % 8);
      if (LITTLE_ENDIAN) {
        // Cells are little-endian doubles: one copy into aligned memory, no per-value decoding.
        cells.set(new Float64Array(data.buffer.slice(data.byteOffset, data.byteOffset + whole)), place.at);
      } else {
        for (let j = 0; j < whole; j += 8) cells[place.at + j / 8] = data.readDoubleLE(j);
      }
    });
    return out.filter((g) => hasData(g.cells, F));
  }

  async countDistinct(dataset: string, read: DistinctRead): Promise<number[]> {
    const { prefix } = this.dataset(dataset);
    const groups = read.groups.map(encodeGroup);
    const pipeline = this.redis.pipeline();
    const answered: boolean[] = [];
    for (const [from, to] of read.ranges) {
      const keys: string[] = [];
      for (let b = from; b < to; b += read.tierMs) {
        for (const g of groups)
          keys.push(`${prefix}h:${read.tierMs}:${read.projection}:${read.field + 1}:${b}:${g}`);
      }
      answered.push(keys.length > 0);
      if (keys.length > 0) pipeline.pfcount(...keys);
    }
    const replies = (await this.call(() => pipeline.exec())) ?? [];
    let next = 0;
    return answered.map((has) => {
      if (!has) return 0;
      const [err, value] = replies[next++]!;
      if (err) throw err;
      return Number(value);
    });
  }

  async appendEvent(dataset: string, event: SyncEvent): Promise<void> {
    const key = `${this.dataset(dataset).prefix}ev`;
    await this.call(() =>
      this.redis
        .multi()
        .lpush(key, JSON.stringify(event))
        .ltrim(key, 0, EVENTS_KEPT - 1)
        .exec(),
    );
  }

  async readEvents(dataset: string, from: number, to: number, limit: number): Promise<SyncEvent[]> {
    const raw = await this.call(() => this.redis.lrange(`${this.dataset(dataset).prefix}ev`, 0, -1));
    const events: SyncEvent[] = [];
    for (const text of raw) {
      const event = JSON.parse(text) as SyncEvent;
      if (event.endedAt >= from && event.startedAt <= to) events.push(event);
      if (events.length >= limit) break;
    }
    return events;
  }

  async appendRegion(dataset: string, region: SyncRegion): Promise<void> {
    const key = `${this.dataset(dataset).prefix}rg`;
    await this.call(() =>
      this.redis
        .multi()
        .lpush(key, JSON.stringify(region))
        .ltrim(key, 0, EVENTS_KEPT - 1)
        .exec(),
    );
  }

  async readRegions(dataset: string, from: number, to: number, limit: number): Promise<SyncRegion[]> {
    const raw = await this.call(() => this.redis.lrange(`${this.dataset(dataset).prefix}rg`, 0, -1));
    const regions: SyncRegion[] = [];
    for (const text of raw) {
      const region = JSON.parse(text) as SyncRegion;
      if (region.endedAt >= from && region.startedAt <= to) regions.push(region);
      if (regions.length >= limit) break;
    }
    return regions;
  }

  async writeStatus(dataset: string, status: Record<string, unknown>): Promise<void> {
    await this.call(() => this.redis.set(`${this.dataset(dataset).prefix}status`, JSON.stringify(status)));
  }

  async readStatus(dataset: string): Promise<Record<string, unknown> | null> {
    const text = await this.call(() => this.redis.get(`${this.dataset(dataset).prefix}status`));
    return text ? (JSON.parse(text) as Record<string, unknown>) : null;
  }

  async ping(): Promise<void> {
    await this.call(() => this.redis.ping());
  }

  async close(): Promise<void> {
    if (this.redis.status === 'end') return;
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  /** Runs a Redis call, turning connection trouble into a StoreUnavailableError. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.redis.status !== 'ready') {
      throw new StoreUnavailableError(`Redis is not reachable (connection ${this.redis.status})`);
    }
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StoreError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      if (isConnectionError(err))
        throw new StoreUnavailableError(`Redis is not reachable: ${message}`, { cause: err });
      if (UNAVAILABLE_REPLY.test(message))
        throw new StoreUnavailableError(`Redis cannot serve now: ${message}`, { cause: err });
      throw new StoreError(`Redis: ${message}`, { cause: err });
    }
  }
}

function hasData(cells: Float64Array, F: number): boolean {
  for (let i = 0; i < cells.length; i += F) if (cells[i]! > 0) return true;
  return false;
}

/**
 * Replies that mean "not now" rather than "never": a script running too long (BUSY), a
 * dataset loading, a failover under way, memory or persistence trouble. Requests answer 503
 * with Retry-After and the sync engine retries, as when the connection is gone.
 */
const UNAVAILABLE_REPLY = /^(BUSY|LOADING|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|MISCONF|OOM|NOREPLICAS)\b/;

function isConnectionError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string };
  return (
    e?.name === 'MaxRetriesPerRequestError' ||
    e?.code === 'ECONNREFUSED' ||
    e?.code === 'ECONNRESET' ||
    e?.code === 'EPIPE' ||
    /Connection is closed|Stream isn't writeable|Command timed out/.test(e?.message ?? '')
  );
}
