import { MemoryCacheBackend, ResponseCache, type CacheBackend } from '../../src/query/cache';

/** A shared backend (Redis's stand-in) that counts what it is asked. */
class CountingBackend extends MemoryCacheBackend {
  gets = 0;
  override async get(key: string): Promise<string | null> {
    this.gets++;
    return super.get(key);
  }
}

describe('response cache with a local tier', () => {
  const compute = (value: string) => async () => value;

  it('serves a hit from memory without asking the shared backend for the whole answer again', async () => {
    const shared = new CountingBackend();
    const cache = new ResponseCache(shared, 60_000, new MemoryCacheBackend());
    expect(await cache.get('k', 's1', false, compute('A'))).toEqual({ value: 'A', result: 'miss' });
    const gets = shared.gets;
    expect(await cache.get('k', 's1', false, compute('never'))).toEqual({ value: 'A', result: 'hit' });
    expect(shared.gets).toBe(gets);
  });

  it('never serves a local entry once the data stamp moved, and takes a newer shared one', async () => {
    const shared: CacheBackend = new MemoryCacheBackend();
    const mine = new ResponseCache(shared, 60_000, new MemoryCacheBackend());
    const replica = new ResponseCache(shared, 60_000, new MemoryCacheBackend());
    await mine.get('k', 's1', false, compute('old'));
    // Another replica answered the same query after the data changed.
    await replica.get('k', 's2', false, compute('new'));
    expect(await mine.get('k', 's2', false, compute('never'))).toEqual({ value: 'new', result: 'hit' });
    expect(await mine.get('k', 's3', false, compute('newest'))).toEqual({ value: 'newest', result: 'miss' });
  });
});
