/**
 * Where the Redis store lives: one server (`redis://`, `rediss://`, `unix://`, read by
 * ioredis itself) or a Redis Cluster, named by a few of its nodes in one URL:
 * `redis+cluster://[user[:password]@]host:port[,host:port…]` (`rediss+cluster://` for TLS).
 * The client learns the rest of the cluster from the nodes it reaches.
 */
export type RedisTarget =
  | { kind: 'server'; url: string }
  | {
      kind: 'cluster';
      nodes: { host: string; port: number }[];
      username?: string;
      password?: string;
      tls: boolean;
    };

const CLUSTER_SCHEME = /^(rediss?)\+cluster:\/\//;

/** Whether the URL names a Redis Cluster (its other problems are parseRedisUrl's to tell). */
export function isClusterUrl(url: string): boolean {
  return CLUSTER_SCHEME.test(url);
}

/** The target a URL names; throws an Error saying what is wrong with a cluster URL. */
export function parseRedisUrl(url: string): RedisTarget {
  const scheme = CLUSTER_SCHEME.exec(url);
  if (!scheme) return { kind: 'server', url };
  let rest = url.slice(scheme[0].length);
  if (/[?#]/.test(rest)) throw new Error('a redis+cluster:// URL takes no query or fragment');
  // The user-info ends at the last `@`: a password may hold `@` (or write it as %40).
  const at = rest.lastIndexOf('@');
  let username: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    const info = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = info.indexOf(':');
    username = decode(colon < 0 ? info : info.slice(0, colon)) || undefined;
    if (colon >= 0) password = decode(info.slice(colon + 1)) || undefined;
  }
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    if (rest.slice(slash) !== '/' && rest.slice(slash) !== '/0') {
      throw new Error(`a Redis Cluster has only database 0; drop "${rest.slice(slash)}"`);
    }
    rest = rest.slice(0, slash);
  }
  if (rest === '') throw new Error('names no node: write redis+cluster://host:port,host:port');
  const nodes = rest.split(',').map((node) => {
    const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/.exec(node);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) {
      throw new Error(`node "${node}" must be host:port, with a port from 1 to 65535`);
    }
    return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
  });
  return {
    kind: 'cluster',
    nodes,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    tls: scheme[1] === 'rediss',
  };
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new Error('the user or password has a % that starts no escape (write % as %25)');
  }
}
