/**
 * The preview's server half over real HTTP: a Fastify app with the preview plugin, an upstream
 * HTTP server standing for the service, and fetch as the browser.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { previewPlugin } from '../../server/index';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const seen: Seen[] = [];
let upstream: http.Server;
let upstreamUrl = '';
let app: FastifyInstance;
let base = '';
let dir = '';
const TOKEN = 'live-token';

before(async () => {
  upstream = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.url?.startsWith('/api/unauthorized')) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"the API key is wrong"}');
      } else if (req.url?.startsWith('/api/events')) {
        // A stream that stays open: its first event must reach the browser without waiting for the end.
        res.writeHead(200, { 'content-type': 'text/event-stream', 'set-cookie': 'a=b' });
        res.write('event: hello\ndata: {}\n\n');
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'a=b', connection: 'close' });
        res.end(JSON.stringify({ ok: true }));
      }
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

  dir = await mkdtemp(path.join(os.tmpdir(), 'preview-server-'));
  await writeFile(
    path.join(dir, 'plugin.json'),
    JSON.stringify({
      id: 'livesync-datasource',
      name: 'LiveSync',
      type: 'datasource',
      info: { version: '1.0.0', logos: { small: 'img/logo.svg', large: 'img/logo.svg' } },
      routes: [
        {
          path: 'livesync',
          url: '{{ .JsonData.url }}',
          headers: [{ name: 'Authorization', content: 'Bearer {{ .SecureJsonData.apiKey }}' }],
        },
      ],
    }),
  );
  app = Fastify();
  await app.register(previewPlugin, {
    prefix: '/preview',
    publicDir: dir,
    pluginDir: dir,
    serviceUrl: () => upstreamUrl,
    live: { token: async () => TOKEN, streamId: 'livesync' },
  });
  base = `${await app.listen({ host: '127.0.0.1', port: 0 })}/preview`;
});

after(async () => {
  await app.close();
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

const proxy = (rest: string) => `${base}/api/datasources/proxy/uid/livesync/livesync${rest}`;

async function saveSettings(patch: Record<string, unknown>): Promise<void> {
  const url = `${base}/api/datasources/uid/livesync`;
  const current = (await (await fetch(url)).json()) as Record<string, unknown>;
  const response = await fetch(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...current, ...patch }),
  });
  assert.equal(response.status, 200);
}

test('the proxy applies the route: target from jsonData, bearer token from secureJsonData', async () => {
  await saveSettings({ secureJsonData: { apiKey: 'k1' } });
  seen.length = 0;
  const response = await fetch(proxy('/api/query?x=1'), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      cookie: 'grafana_session=secret',
      origin: 'http://evil',
      referer: 'http://grafana/d/x',
    },
    body: '{"q":1}',
  });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { ok: true });
  assert.equal(response.headers.get('content-security-policy'), 'sandbox');
  assert.equal(response.headers.get('set-cookie'), null);
  const request = seen[0]!;
  assert.equal(request.method, 'POST');
  assert.equal(request.url, '/api/query?x=1');
  assert.equal(request.body, '{"q":1}');
  assert.equal(request.headers['authorization'], 'Bearer k1');
  assert.equal(request.headers['cookie'], undefined);
  assert.equal(request.headers['origin'], undefined);
  assert.equal(request.headers['referer'], undefined);
  assert.equal(request.headers['x-grafana-referer'], 'http://grafana/d/x');
  assert.match(String(request.headers['user-agent']), /^Grafana\//);
  assert.equal(request.headers['x-forwarded-for'], '127.0.0.1');
});

test('an emptied key is sent empty', async () => {
  await saveSettings({ secureJsonData: { apiKey: '' } });
  seen.length = 0;
  await fetch(proxy('/api/health'));
  // (HTTP trims the trailing space of "Bearer ".)
  assert.equal(seen[0]?.headers['authorization'], 'Bearer');
});

test("an upstream 401 becomes Grafana's 400 Authentication to data source failed", async () => {
  const response = await fetch(proxy('/api/unauthorized'));
  assert.equal(response.status, 400);
  assert.equal(await response.text(), 'Authentication to data source failed');
});

test('an unreachable upstream is a 502 with no body; an unknown data source a 404', async () => {
  await saveSettings({ jsonData: { url: 'http://127.0.0.1:1' } });
  try {
    const response = await fetch(proxy('/api/health'));
    assert.equal(response.status, 502);
    assert.equal(await response.text(), '');
  } finally {
    await saveSettings({ jsonData: { url: upstreamUrl } });
  }
  assert.equal((await fetch(`${base}/api/datasources/proxy/uid/nope/livesync/api/health`)).status, 404);
});

test('a streamed answer flows through as it comes', async () => {
  const abort = new AbortController();
  const response = await fetch(proxy('/api/events'), { signal: abort.signal });
  assert.equal(response.headers.get('content-type'), 'text/event-stream');
  const reader = response.body!.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /event: hello/);
  abort.abort();
});

test('Grafana Live: pushes need the token; subscribers get frames, with the schema first', async () => {
  const push = (auth: string, body: string) =>
    fetch(`${base}/api/live/push/livesync`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'text/plain' },
      body,
    });
  assert.equal((await push('Bearer wrong', 'events v=1')).status, 401);
  assert.equal((await push(`Bearer ${TOKEN}`, 'events v=')).status, 400);

  const abort = new AbortController();
  const stream = await fetch(`${base}/api/live/preview/events?session=s1`, { signal: abort.signal });
  const reader = stream.body!.getReader();
  const messages: Array<{ channel: string; data: { schema?: unknown; data: { values: unknown[][] } } }> = [];
  let buffer = '';
  const next = async () => {
    while (!buffer.includes('\n\n') || !/^data: /m.test(buffer.split('\n\n')[0]!)) {
      if (buffer.includes('\n\n')) buffer = buffer.slice(buffer.indexOf('\n\n') + 2);
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      buffer += new TextDecoder().decode(value);
    }
    const event = buffer.slice(0, buffer.indexOf('\n\n'));
    buffer = buffer.slice(buffer.indexOf('\n\n') + 2);
    messages.push(JSON.parse(event.replace(/^data: /, '')));
    return messages.at(-1)!;
  };
  const subscribe = await fetch(`${base}/api/live/preview/subscribe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ session: 's1', channel: '1/stream/livesync/events' }),
  });
  assert.equal(subscribe.status, 200);

  assert.equal((await push(`Bearer ${TOKEN}`, 'events version=1i,to=60000i 1000000')).status, 200);
  const first = await next();
  assert.equal(first.channel, 'stream/livesync/events');
  assert.ok(first.data.schema, 'the first frame has its schema');
  assert.deepEqual(first.data.data.values, [[1], [60000], [1]]);

  assert.equal((await push(`Bearer ${TOKEN}`, 'events version=2i,to=120000i 2000000')).status, 200);
  const second = await next();
  assert.equal(second.data.schema, undefined, 'same schema: data only');
  assert.deepEqual(second.data.data.values, [[2], [120000], [2]]);
  abort.abort();
});

test("the backend plugin's API says which build is missing when the host cannot start", async () => {
  const query = await fetch(`${base}/api/ds/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ from: '0', to: '1', queries: [{ refId: 'A', datasource: { uid: 'livesync' } }] }),
  });
  assert.equal(query.status, 500);
  assert.match(
    ((await query.json()) as { message: string }).message,
    /^Plugin backend unavailable: the preview host \(npm run build -w preview builds it\) is missing: .*grafana-host$/,
  );
  const health = await fetch(`${base}/api/datasources/uid/livesync/health`);
  assert.equal(health.status, 500);
  assert.equal((await fetch(`${base}/api/datasources/uid/nope/health`)).status, 404);
  const unknown = await fetch(`${base}/api/ds/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ from: '0', to: '1', queries: [{ refId: 'A', datasource: { uid: 'nope' } }] }),
  });
  assert.equal(unknown.status, 400);
  assert.deepEqual(await unknown.json(), { message: 'data source not found: nope' });
});

test('Grafana Live: a ds/ channel runs the backend stream; its failure is a channel error', async () => {
  const abort = new AbortController();
  const stream = await fetch(`${base}/api/live/preview/events?session=s2`, { signal: abort.signal });
  const reader = stream.body!.getReader();
  const subscribe = (channel: string) =>
    fetch(`${base}/api/live/preview/subscribe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ session: 's2', channel }),
    });
  const refused = await subscribe('1/ds/nope/orders');
  assert.equal(refused.status, 404);
  assert.equal(
    ((await refused.json()) as { message: string }).message,
    'no data source with uid "nope" has a backend here',
  );

  assert.equal((await subscribe('1/ds/livesync/orders')).status, 200);
  let text = '';
  while (!text.includes('event: channel-error')) {
    const { value, done } = await reader.read();
    if (done) throw new Error('stream ended');
    text += new TextDecoder().decode(value);
  }
  const event = text.slice(text.indexOf('event: channel-error'));
  const data = JSON.parse(event.split('\n')[1]!.replace(/^data: /, '')) as { channel: string; error: string };
  assert.equal(data.channel, 'ds/livesync/orders');
  assert.match(data.error, /the preview host .* is missing/);
  abort.abort();
});
