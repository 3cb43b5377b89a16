import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { cacheKey } from '../store/redis-keys';

/** Where cached answers live: Redis when the service has it, else this process's memory. */
export interface CacheBackend {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
}

export class MemoryCacheBackend implements CacheBackend {
  private readonly entries = new Map<string, { value: string; expires: number }>();

  constructor(private readonly maxEntries = 2_000) {}

  async get(key: string): Promise<string | null> {
    const entry = this.entries.get(key);
    if (!entry) return null;
    if (entry.expires < Date.now()) {
      this.entries.delete(key);
      return null;
    }
    // Re-insert so iteration order is least recently used first.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.entries.delete(key);
    this.entries.set(key, { value, expires: Date.now() + ttlMs });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
}

export class RedisCacheBackend implements CacheBackend {
  constructor(
    private readonly redis: Redis,
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
 */
export class ResponseCache {
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly backend: CacheBackend,
    private readonly ttlMs = 10 * 60_000,
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
      const cached = await this.backend.get(key).catch(() => null);
      if (cached !== null) {
        const split = cached.indexOf('\n');
        if (cached.slice(0, split) === stamp) return { value: cached.slice(split + 1), result: 'hit' };
      }
    }
    const flightKey = `${key}@${stamp}`;
    let flight = this.inflight.get(flightKey);
    // Joining an identical computation already under way costs nothing: a hit.
    const joined = flight !== undefined && !bypass;
    if (!flight) {
      flight = compute().then(async (value) => {
        // A cache that cannot be written is no reason to fail the answer.
        await this.backend.set(key, `${stamp}\n${value}`, this.ttlMs).catch(() => undefined);
        return value;
      });
      this.inflight.set(flightKey, flight);
      void flight.finally(() => this.inflight.delete(flightKey)).catch(() => undefined);
    }
    return { value: await flight, result: bypass ? 'bypass' : joined ? 'hit' : 'miss' };
  }
}
