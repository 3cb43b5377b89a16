import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { type DataSourceStore, type PluginJson, type PluginRoute, readPluginJson } from './datasources';
import { TemplateError, type TemplateData, interpolateString } from './goTemplate';

export interface ProxyOptions {
  store: () => DataSourceStore;
  pluginDir: string;
  grafanaVersion: string;
  /** How long to wait for the upstream's response headers (Grafana's dataproxy.timeout, 30 s). */
  timeoutMs?: number;
}

/** Headers that describe one connection, never forwarded (RFC 9110 §7.6.1, as Go's ReverseProxy drops them). */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];

/**
 * Grafana's data-source proxy, `/api/datasources/proxy/uid/<uid>/<path>`
 * (pkg/api/pluginproxy/ds_proxy.go), for data sources with `access: proxy`:
 *
 * - the first route of the BUILT plugin.json whose `path` prefixes `<path>` (and whose `method`,
 *   if any, matches) is applied: its `url` template becomes the target (the rest of the path is
 *   joined to it), its `headers` and `urlParams` templates are filled from the data source's
 *   `jsonData` and decrypted `secureJsonData` and set on the request; without a matching route
 *   the request goes to the data source's own `url`;
 * - the request keeps its method, body, query and headers except hop-by-hop ones, cookies
 *   (unless `jsonData.keepCookies` names them), `Origin`, `Referer` (kept as
 *   `X-Grafana-Referer`) and `X-Forwarded-Host/Port/Proto`; `X-Forwarded-For` is appended;
 *   `X-DS-Authorization` becomes `Authorization`; the user agent is `Grafana/<version>`;
 * - the response is streamed back as it arrives (server-sent events work) without hop-by-hop
 *   headers or `Set-Cookie`, with `Content-Security-Policy: sandbox`; an upstream 401 becomes
 *   `400 Authentication to data source failed`, as Grafana keeps upstream auth failures from
 *   looking like a Grafana logout; an unreachable upstream is a 502 with an empty body, one whose
 *   headers take longer than the timeout a 504, and a client that went away a 499.
 *
 * Not reproduced: route `reqRole` checks (the preview's one user is an admin), token and JWT
 * auth routes, team headers, OAuth pass-through, the data proxy's allow-list.
 */
export function registerProxy(app: FastifyInstance, options: ProxyOptions): void {
  // The body goes through untouched: no parsing here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.all('/api/datasources/proxy/uid/:uid/*', async (request, reply) => {
    const { uid, '*': proxyPath = '' } = request.params as { uid: string; '*'?: string };
    const ds = options.store().get(uid);
    if (!ds) return reply.status(404).send({ message: 'Data source not found' });
    if (proxyPath.split('/').includes('..')) return reply.status(400).send({ message: 'Invalid proxy path' });
    const plugin = await readPluginJson(options.pluginDir);
    const data: TemplateData = { JsonData: ds.jsonData, SecureJsonData: ds.secureJsonData };
    const route = matchRoute(plugin, proxyPath, request.method);
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';

    let target: URL;
    const routeHeaders: Record<string, string> = {};
    try {
      if (route) {
        const rest = proxyPath.slice(route.path.length);
        const base = route.url ? interpolateString(route.url, data) : ds.url;
        target = new URL(absolute(base));
        target.pathname = joinUrlFragments(target.pathname, rest);
        target.search = query;
        for (const param of route.urlParams ?? []) {
          target.searchParams.append(
            interpolateString(param.name, data),
            interpolateString(param.content, data),
          );
        }
        for (const header of route.headers ?? [])
          routeHeaders[header.name] = interpolateString(header.content, data);
      } else {
        target = new URL(absolute(ds.url));
        target.pathname = joinUrlFragments(target.pathname, proxyPath);
        target.search = query;
      }
    } catch (err) {
      if (err instanceof TemplateError)
        request.log.error({ err }, 'data proxy: failed to interpolate the route');
      // Grafana's reverse proxy answers a target it cannot reach (no scheme, no host) with 502.
      return reply.status(502).send();
    }

    const headers = forwardHeaders(request, ds.jsonData, target, options.grafanaVersion);
    for (const [name, value] of Object.entries(routeHeaders)) headers[name.toLowerCase()] = value;
    return forward(request, reply, target, headers, options.timeoutMs ?? 30_000);
  });
}

function matchRoute(plugin: PluginJson, proxyPath: string, method: string): PluginRoute | undefined {
  return (plugin.routes ?? []).find(
    (route) =>
      (!route.method || route.method === '*' || route.method === method) && proxyPath.startsWith(route.path),
  );
}

/** A target without a scheme cannot be proxied to: Go's reverse proxy fails on it. */
function absolute(url: string): string {
  if (!/^https?:\/\/[^/]/i.test(url)) throw new Error(`unsupported target "${url}"`);
  return url;
}

/** Go's util.JoinURLFragments: exactly one slash between the parts. */
export function joinUrlFragments(a: string, b: string): string {
  if (b.length === 0) return a;
  const aSlash = a.endsWith('/');
  const bSlash = b.startsWith('/');
  if (aSlash && bSlash) return a + b.slice(1);
  if (!aSlash && !bSlash) return `${a}/${b}`;
  return a + b;
}

function forwardHeaders(
  request: FastifyRequest,
  jsonData: Record<string, unknown>,
  target: URL,
  grafanaVersion: string,
): OutgoingHttpHeaders {
  const incoming: IncomingHttpHeaders = request.headers;
  const drop = new Set([
    ...HOP_BY_HOP,
    ...String(incoming['connection'] ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
    'host',
    'cookie',
    'origin',
    'referer',
    'x-forwarded-host',
    'x-forwarded-port',
    'x-forwarded-proto',
    'x-grafana-user',
    'content-length',
  ]);
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming))
    if (!drop.has(name) && value !== undefined) headers[name] = value;

  const keep = Array.isArray(jsonData['keepCookies'])
    ? (jsonData['keepCookies'] as unknown[]).map(String)
    : [];
  const cookies = String(incoming['cookie'] ?? '')
    .split(';')
    .map((c) => c.trim())
    .filter((c) => {
      const name = c.split('=')[0] ?? '';
      return (
        c !== '' &&
        keep.some((k) => k === '[]' || k === name || (k.endsWith('[]') && name.startsWith(k.slice(0, -2))))
      );
    });
  if (cookies.length) headers['cookie'] = cookies.join('; ');

  headers['x-grafana-referer'] = String(incoming['referer'] ?? '');
  const remote = request.socket.remoteAddress ?? '';
  const forwardedFor = incoming['x-forwarded-for'];
  headers['x-forwarded-for'] = forwardedFor ? `${String(forwardedFor)}, ${remote}` : remote;
  const dsAuthorization = incoming['x-ds-authorization'];
  delete headers['x-ds-authorization'];
  if (dsAuthorization) headers['authorization'] = String(dsAuthorization);
  headers['user-agent'] = `Grafana/${grafanaVersion}`;
  headers['host'] = target.host;
  return headers;
}

function forward(
  request: FastifyRequest,
  reply: FastifyReply,
  target: URL,
  headers: OutgoingHttpHeaders,
  timeoutMs: number,
): Promise<void> {
  const body = Buffer.isBuffer(request.body) ? request.body : undefined;
  if (body) headers['content-length'] = String(body.length);
  const client = target.protocol === 'https:' ? https : http;
  reply.hijack();
  const res = reply.raw;
  return new Promise<void>((resolve) => {
    const upstream = client.request(target, { method: request.method, headers });
    let answered = false;
    const fail = (status: number) => {
      if (!answered && !res.headersSent) {
        answered = true;
        res.writeHead(status).end();
      } else {
        res.destroy();
      }
      resolve();
    };
    const headerTimer = setTimeout(() => {
      upstream.destroy();
      fail(504);
    }, timeoutMs);
    // The browser went away (a cancelled query, a closed stream): stop the upstream call too.
    res.on('close', () => {
      clearTimeout(headerTimer);
      if (!res.writableFinished) upstream.destroy();
      resolve();
    });
    upstream.on('error', () => {
      clearTimeout(headerTimer);
      if (request.raw.destroyed) {
        fail(499);
        return;
      }
      fail(502);
    });
    upstream.on('response', (up) => {
      clearTimeout(headerTimer);
      answered = true;
      if (up.statusCode === 401) {
        up.resume();
        const message = 'Authentication to data source failed';
        res.writeHead(400, {
          'content-type': 'text/plain; charset=utf-8',
          'content-length': Buffer.byteLength(message),
        });
        res.end(message);
        return;
      }
      const out: OutgoingHttpHeaders = {};
      const drop = new Set([...HOP_BY_HOP, 'set-cookie']);
      for (const [name, value] of Object.entries(up.headers))
        if (!drop.has(name) && value !== undefined) out[name] = value;
      out['content-security-policy'] = 'sandbox';
      res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
      // Flush every chunk as it comes: server-sent events must not wait in a buffer.
      up.on('data', (chunk: Buffer) => res.write(chunk));
      up.on('end', () => res.end());
      up.on('error', () => res.destroy());
    });
    if (body) upstream.end(body);
    else upstream.end();
  });
}
