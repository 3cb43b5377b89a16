import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { parseRedisUrl } from '../config/redis-url';
import { StoreUnavailableError } from './types';

/**
 * The connection the Redis store works through: one server, or a Redis Cluster. Every key of
 * a dataset carries the dataset's hash tag (redis-keys.ts), so whatever the store does to a
 * dataset (a script, a pipeline, a MULTI) lands on the one node that holds its slot; only
 * what spans datasets or the whole server (SCAN, PING, INFO, SLOWLOG) is asked of every
 * master in turn, with the functions below.
 */
export type RedisClient = Redis | Cluster;

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

/**
 * A client for the URL, not yet connected. A cluster client follows MOVED and ASK on its
 * own, and retries a command whose node went away (a failover) for about two seconds while
 * it learns the new masters; past that the command fails and the caller answers 503. A
 * retried write is safe: every write script is guarded by the dataset's write sequence.
 */
export function createRedisClient(url: string): RedisClient {
  const target = parseRedisUrl(url);
  if (target.kind === 'server') return new Redis(url, redisOptions());
  const { enableOfflineQueue, lazyConnect, ...perNode } = redisOptions();
  return new Cluster(target.nodes, {
    enableOfflineQueue,
    lazyConnect,
    scaleReads: 'master',
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    maxRedirections: 10,
    slotsRefreshTimeout: 2_000,
    clusterRetryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    redisOptions: {
      ...perNode,
      ...(target.username === undefined ? {} : { username: target.username }),
      ...(target.password === undefined ? {} : { password: target.password }),
      ...(target.tls ? { tls: {} } : {}),
    },
  });
}

/** The servers that hold data: the one server, or every master of the cluster as last seen. */
export function masters(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/**
 * The master of every slot, each once. A slot whose master is not known (a failover under
 * way) makes it throw: a scan that skipped it would miss keys and say nothing.
 */
function slotMasters(client: RedisClient): Redis[] {
  if (!(client instanceof Cluster)) return [client];
  const byKey = new Map(
    client.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]),
  );
  const found = new Set<Redis>();
  for (let slot = 0; slot < 16_384; slot++) {
    const node = byKey.get(client.slots[slot]?.[0] ?? '');
    if (!node) throw new StoreUnavailableError(`Redis Cluster: no master is known for slot ${slot} now`);
    found.add(node);
  }
  return [...found];
}

/** Every key matching `pattern`, a bounded SCAN page at a time, on the master of every slot. */
export async function scanKeys(
  client: RedisClient,
  pattern: string,
  each: (keys: string[]) => Promise<void>,
  count = 1000,
): Promise<void> {
  for (const node of slotMasters(client)) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      cursor = next;
      if (found.length > 0) await each(found);
    } while (cursor !== '0');
  }
}

/** Resolves when the master of every slot answers PING. */
export async function pingAll(client: RedisClient): Promise<void> {
  await Promise.all(slotMasters(client).map((node) => node.ping()));
}

/**
 * Quits politely, waiting for replies under way, but never longer than `graceMs`: a cluster
 * client may hold a connection to a node that died, which QUIT would wait on for ever.
 */
export async function closeClient(client: RedisClient, graceMs = 1_000): Promise<void> {
  if (client.status === 'end') return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.quit(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('QUIT took too long')), graceMs);
      }),
    ]);
  } catch {
    client.disconnect();
  } finally {
    clearTimeout(timer);
  }
}
