import { createHash } from 'node:crypto';
import type { RedisClient } from '../store/redis-client';
import { cacheKey } from '../store/redis-keys';

/** Where cached answers live: Redis when the service has it, else this process's memory. */
export interface CacheBackend {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
}

/**
 * Answers cached in this process, least recently used out first. Bounded by count and by
 * size (characters, about bytes for JSON): answers may be up to `server.limits.maxPointsPerRequest`
 * points (about 12 MB at the default), and 2,000 of those would be most of the machine.
 * An answer larger than a quarter of the size bound is not kept.
 */
export class MemoryCacheBackend implements CacheBackend {
  private readonly entries = new Map<string, { value: string; expires: number }>();
  private chars = 0;

  constructor(
    private readonly maxEntries = 2_000,
    private readonly maxChars = 64 * 2 ** 20,
  ) {}

  async get(key: string): Promise<string | null> {
    const entry = this.entries.get(key);
    if (!entry) return null;
    if (entry.expires < Date.now()) {
      this.remove(key);
      return null;
    }
    // Re-insert so iteration order is least recently used first.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.remove(key);
    if (value.length > this.maxChars / 4) return;
    this.entries.set(key, { value, expires: Date.now() + ttlMs });
    this.chars += value.length;
    while (this.entries.size > this.maxEntries || this.chars > this.maxChars)
      this.remove(this.entries.keys().next().value!);
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.chars -= entry.value.length;
    this.entries.delete(key);
  }
}

export class RedisCacheBackend implements CacheBackend {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  async get(key: string): Promise<string | null> {
    return this.redis.get(cacheKey(this.prefix, key));
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(cacheKey(this.prefix, key), value, 'PX', ttlMs);
  }
}

export type CacheResult = 'hit' | 'miss' | 'bypass';

/**
 * Cached answers keyed by the normalized query and checked against the data stamp of the
 * range they read: an entry is served only while no batch has touched that range since it
 * was computed, so correctness never rests on an invalidation message arriving.
 * Identical misses under way at once are computed once.
 *
 * With a shared backend (Redis) the entries this process used last are also kept in its
 * memory (`local`): a hit then costs a map lookup, where a Redis GET would carry the whole
 * answer (hundreds of KB for a day of minutes by 20 countries) through Redis and the
 * socket and decode it to a string, every time. That per-hit copy made the cached path
 * slower than computing. The stamp check covers both tiers alike, so a local entry another
 * replica's newer answer replaced is never served once the data moved.
 */
export class ResponseCache {
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly backend: CacheBackend,
    private readonly ttlMs = 10 * 60_000,
    private readonly local: CacheBackend | null = null,
  ) {}

  static key(parts: unknown): string {
    return createHash('sha1').update(JSON.stringify(parts)).digest('base64url');
  }

  async get(
    key: string,
    stamp: string,
    bypass: boolean,
    compute: () => Promise<string>,
  ): Promise<{ value: string; result: CacheResult }> {
    if (!bypass) {
      const cached = await this.lookup(key, stamp);
      if (cached !== null) return { value: cached, result: 'hit' };
    }
    const flightKey = `${key}@${stamp}`;
    let flight = this.inflight.get(flightKey);
    // Joining an identical computation already under way costs nothing: a hit.
    const joined = flight !== undefined && !bypass;
    if (!flight) {
      flight = compute().then(async (value) => {
        const entry = `${stamp}\n${value}`;
        await this.local?.set(key, entry, this.ttlMs);
        // A cache that cannot be written is no reason to fail the answer.
        await this.backend.set(key, entry, this.ttlMs).catch(() => undefined);
        return value;
      });
      this.inflight.set(flightKey, flight);
      void flight.finally(() => this.inflight.delete(flightKey)).catch(() => undefined);
    }
    return { value: await flight, result: bypass ? 'bypass' : joined ? 'hit' : 'miss' };
  }

  /** The entry for `key` computed at `stamp`: from this process's memory first, then the backend. */
  private async lookup(key: string, stamp: string): Promise<string | null> {
    const near = this.local && valueAt(await this.local.get(key), stamp);
    if (near) return near;
    const entry = await this.backend.get(key).catch(() => null);
    const value = valueAt(entry, stamp);
    if (value !== null) await this.local?.set(key, entry!, this.ttlMs);
    return value;
  }
}

/** The answer in a cache entry (`stamp\nvalue`) if it was computed at `stamp`. */
function valueAt(entry: string | null, stamp: string): string | null {
  if (entry === null) return null;
  const split = entry.indexOf('\n');
  return entry.slice(0, split) === stamp ? entry.slice(split + 1) : null;
}
