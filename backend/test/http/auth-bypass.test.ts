import Fastify, { type FastifyInstance } from 'fastify';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { apiScope, OPEN_ROUTES, requireGuardedRoutes } from '../../src/http/api';
import { harness, type Harness } from './harness';

const KEY = 'bypass-test-key';

interface Route {
  method: string;
  path: string;
}

/**
 * Every route the app serves, read from Fastify's own route tree, so a route added later is
 * covered without touching this file.
 */
function routesOf(app: FastifyInstance): Route[] {
  const stack: string[] = [];
  const routes: Route[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+) \(([A-Z, ]+)\)$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    stack.push(match[2]!);
    for (const method of match[3]!.split(', ')) routes.push({ method, path: stack.join('') });
  }
  return routes;
}

/** Concrete values for the route parameters. */
function concrete(path: string, dataset: string): string {
  return path.replace(':name', dataset).replace(':dimension', 'country');
}

const encode = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** The ways a client can spell one path that a router, a proxy or a URL parser may treat as it. */
function spellings(path: string, port: number): string[] {
  const segments = path.split('/').slice(1);
  const last = segments.length - 1;
  return [
    path.replace('/a', `/${encode('a')}`), // /%61pi/...
    path.replace('/a', `/${encode('a').toUpperCase()}`), // /%61 vs /%6A-style hex case
    `/${segments.map((s) => [...s].map(encode).join('')).join('/')}`, // every character encoded
    path.replaceAll('/', '%2F'),
    path.replace(/\/([^/]+)$/, '%2F$1'),
    `/${path}`, // //api/...
    path.replace(/\//g, '//'),
    path.replace('/api', '/api/'), // /api//datasets
    `${path}/`,
    `${path}//`,
    path.replace('/api', '/api/.'),
    path.replace('/api', '/x/../api'),
    path.replace('/api', '/api/x/..'),
    path.replace('/api', '/%2e/api'),
    path.replace('/api', '/x/%2e%2e/api'),
    `${path}/.`,
    path.toUpperCase(),
    path.replace('/api', '/Api'),
    path.replace(/[a-z]/, (c) => c.toUpperCase()),
    `${path};x=1`,
    segments.length > 1 ? `/${segments.slice(0, last).join('/')};x/${segments[last]}` : `${path};`,
    path.replaceAll('/', '\\'),
    `${path}%00`,
    `${path}%20`,
    `${path}?x=/api/health/live`,
    `${path}#frag`,
    `http://x${path}`, // absolute form, any host
    `http://127.0.0.1:${port}${path}`,
    `HTTP://127.0.0.1:${port}${path}`,
    `http://127.0.0.1:${port}/${encode('a')}${path.slice(2)}`,
    `//127.0.0.1:${port}${path}`,
  ];
}

/** One raw request: the target is sent exactly as given (no client-side normalisation). */
function send(port: number, method: string, target: string, key?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path: target,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        resolve(res.statusCode ?? 0);
        // Event streams never end on their own: the status is all that is wanted.
        res.destroy();
      },
    );
    req.on('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}

describe('no spelling of a path gets past the API key', () => {
  let h: Harness;
  let port: number;
  let routes: Route[];

  beforeAll(async () => {
    h = await harness({ apiKey: KEY });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    port = (h.app.server.address() as AddressInfo).port;
    routes = routesOf(h.app);
  });
  afterAll(() => h.app.close());

  test('the route tree is read whole: every route of the API is listed', () => {
    const listed = routes.map((r) => `${r.method} ${r.path}`);
    for (const expected of [
      'GET /api/datasets',
      'HEAD /api/datasets',
      'GET /api/datasets/:name',
      'GET /api/datasets/:name/values/:dimension',
      'POST /api/datasets/:name/sync',
      'GET /api/datasets/:name/events',
      'HEAD /api/datasets/:name/events',
      'POST /api/query',
      'GET /api/annotations',
      'GET /api/health',
      'GET /api/health/live',
      'GET /metrics',
    ])
      expect(listed).toContain(expected);
  });

  test('with the key the plain spelling reaches every guarded handler; without it, 401', async () => {
    const wrong: string[] = [];
    for (const { method, path } of routes.filter((r) => !OPEN_ROUTES.has(r.path))) {
      const target = concrete(path, h.spec.name);
      const withKey = await send(port, method, target, KEY);
      const without = await send(port, method, target);
      // With the key the handler (or its schema) answers: anything but the auth hook's 401 or a 404.
      if (withKey === 401 || withKey === 404 || without !== 401)
        wrong.push(`${method} ${target}: ${withKey} with the key, ${without} without`);
    }
    expect(wrong).toEqual([]);
  });

  test('declared open routes answer without the key', async () => {
    for (const path of OPEN_ROUTES) expect(await send(port, 'GET', path)).toBe(200);
  });

  test('encoded, double-slash, dot-segment, mixed-case, trailing-slash and absolute-form spellings without the key: 401 or 404, never a handler', async () => {
    const seen = new Map<number, number>();
    const wrong: string[] = [];
    for (const { method, path } of routes.filter((r) => !OPEN_ROUTES.has(r.path))) {
      for (const target of spellings(concrete(path, h.spec.name), port)) {
        const status = await send(port, method, target);
        seen.set(status, (seen.get(status) ?? 0) + 1);
        // 400 only for targets the server cannot parse at all (before any route is matched).
        if (![400, 401, 404].includes(status)) wrong.push(`${method} ${target}: ${status}`);
      }
    }
    expect(wrong).toEqual([]);
    // The check above would pass vacuously if every spelling were refused as malformed: most reach the hook.
    expect(seen.get(401)).toBeGreaterThan(routes.length);
  });

  test('the spellings that reach a route with the key are the ones refused without it', async () => {
    // Same route, same spelling: only the key differs, so a 2xx with it and a 401 without
    // it shows the hook ran on the matched route.
    const target = `/${encode('a')}pi/datasets`;
    expect(await send(port, 'GET', target, KEY)).toBe(200);
    expect(await send(port, 'GET', target)).toBe(401);
    expect(await send(port, 'GET', `http://x/api/datasets`, KEY)).toBe(200);
    expect(await send(port, 'GET', `http://x/api/datasets`)).toBe(401);
  });
});

describe('the rate limit has no spelling around it either', () => {
  let h: Harness;
  let port: number;

  beforeAll(async () => {
    h = await harness({ apiKey: KEY, rateLimitPerMinute: 5 });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    port = (h.app.server.address() as AddressInfo).port;
  });
  afterAll(() => h.app.close());

  test('encoded and absolute-form spellings count against the same limit; open routes are not limited', async () => {
    const statuses: number[] = [];
    for (const target of ['/%61pi/datasets', 'http://x/api/datasets', '/api/datasets', '/%61pi/health']) {
      for (let i = 0; i < 2; i++) statuses.push(await send(port, 'GET', target, KEY));
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    for (let i = 0; i < 8; i++) expect(await send(port, 'GET', '/api/health/live')).toBe(200);
  });
});

describe('deny by default', () => {
  async function boot(register: (app: FastifyInstance) => Promise<void>): Promise<void> {
    const app = Fastify();
    requireGuardedRoutes(app);
    try {
      await register(app);
      await app.ready();
    } finally {
      await app.close();
    }
  }
  const handler = async () => ({ leaked: true });

  test('a route outside the guarded scope that is not declared open stops the app at boot', async () => {
    await expect(
      boot(async (app) => {
        app.get('/api/secret-thing', handler);
      }),
    ).rejects.toThrow('GET /api/secret-thing is outside the authenticated /api scope');
    await expect(
      boot(async (app) => {
        await app.register(async (child) => {
          child.get('/other', handler);
        });
      }),
    ).rejects.toThrow('/other is outside');
  });

  test('routes in the guarded scope, and the declared open ones, are accepted', async () => {
    await expect(
      boot(async (app) => {
        app.get('/api/health/live', handler);
        await app.register(
          apiScope({
            apiKey: KEY,
            rateLimitPerMinute: 0,
            routes: [async (api) => void api.get('/api/secret-thing', handler)],
          }),
        );
      }),
    ).resolves.toBeUndefined();
  });
});
