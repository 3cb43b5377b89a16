import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DataSourceStore, StoredDataSource } from './datasources';
import { type GrafanaHost, SETTINGS_HEADER, settingsHeader } from './host';
// The plugin's own event-stream parser: one implementation of the WHATWG rules.
import { SseParser } from '../../plugin/src/live/sse';

export interface BackendApiOptions {
  store: () => DataSourceStore;
  host: GrafanaHost;
}

/** Request headers Grafana passes on to a backend plugin's calls (and the host forwards). */
const PASSED_ON = [
  'content-type',
  'accept',
  'x-cache-skip',
  'x-dashboard-uid',
  'x-panel-id',
  'x-query-group-id',
  'x-plugin-id',
  'x-datasource-uid',
];

/**
 * Grafana's HTTP API for backend data sources, answered by the plugin's own binary through the
 * host (see host.ts): `POST /api/ds/query`, `GET /api/datasources/uid/<uid>/health` and
 * `/api/datasources/uid/<uid>/resources/<path>`. The routes find the data source, attach its
 * settings (secrets decrypted, as Grafana sends them to plugins) and pass the host's answer
 * back as it is. Registered in a scope that keeps bodies raw.
 */
export function registerBackendApi(app: FastifyInstance, options: BackendApiOptions): void {
  app.post('/api/ds/query', async (request, reply) => {
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    let uid: string | undefined;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as {
        queries?: Array<{ datasource?: { uid?: string } }>;
      };
      uid = parsed.queries?.[0]?.datasource?.uid;
    } catch {
      return reply.status(400).send({ message: 'bad request data' });
    }
    // The preview's data sources are all of this plugin: one host answers them.
    const ds = uid ? options.store().get(uid) : undefined;
    if (!ds) return reply.status(400).send({ message: `data source not found: ${uid ?? '(none)'}` });
    return forward(request, reply, options.host, ds, '/api/ds/query', body);
  });

  app.get('/api/datasources/uid/:uid/health', async (request, reply) => {
    const ds = options.store().get((request.params as { uid: string }).uid);
    if (!ds) return reply.status(404).send({ message: 'Data source not found' });
    return forward(request, reply, options.host, ds, `/api/datasources/uid/${ds.uid}/health`);
  });

  app.all('/api/datasources/uid/:uid/resources/*', async (request, reply) => {
    const { uid, '*': rest = '' } = request.params as { uid: string; '*'?: string };
    const ds = options.store().get(uid);
    if (!ds) return reply.status(404).send({ message: 'Data source not found' });
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
    const body = Buffer.isBuffer(request.body) ? request.body : undefined;
    return forward(
      request,
      reply,
      options.host,
      ds,
      `/api/datasources/uid/${ds.uid}/resources/${rest}${query}`,
      body,
    );
  });
}

async function forward(
  request: FastifyRequest,
  reply: FastifyReply,
  host: GrafanaHost,
  ds: StoredDataSource,
  path: string,
  body?: Buffer,
): Promise<FastifyReply> {
  const headers: Record<string, string> = { [SETTINGS_HEADER]: settingsHeader(ds) };
  for (const name of PASSED_ON) {
    const value = request.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  // A cancelled query (BackendSrv's requestId) cancels the plugin's call too.
  const abort = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  let res: Response;
  try {
    res = await fetch(`${await host.url()}${path}`, {
      method: request.method,
      headers,
      ...(body && body.length > 0 ? { body: new Uint8Array(body) } : {}),
      signal: abort.signal,
    });
  } catch (err) {
    request.log.error({ err }, 'preview: the plugin backend host failed');
    return reply
      .status(500)
      .send({ message: `Plugin backend unavailable: ${err instanceof Error ? err.message : String(err)}` });
  }
  const payload = Buffer.from(await res.arrayBuffer());
  reply.status(res.status);
  const type = res.headers.get('content-type');
  if (type) reply.header('content-type', type);
  return reply.send(payload);
}

/**
 * A `ds/<uid>/<path>` channel's packets from the host, until `close` (the channel's last
 * subscriber left) or the stream fails (`onError`, after which the channel must be subscribed
 * again, as Grafana's does).
 */
export function openDataSourceStream(
  host: GrafanaHost,
  ds: StoredDataSource,
  path: string,
  onPacket: (packet: unknown) => void,
  onError: (message: string) => void,
): () => void {
  const abort = new AbortController();
  void (async () => {
    try {
      const res = await fetch(`${await host.url()}/api/live/ds/${ds.uid}/${path}`, {
        headers: { [SETTINGS_HEADER]: settingsHeader(ds), accept: 'text/event-stream' },
        signal: abort.signal,
      });
      if (!res.ok || !res.body) {
        const { message } = (await res.json().catch(() => ({}))) as { message?: string };
        onError(message ?? `the plugin refused the channel (${res.status})`);
        return;
      }
      const parser = new SseParser();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        for (const event of parser.push(chunk)) {
          const data = JSON.parse(event.data) as { message?: string };
          if (event.event === 'error') onError(data.message ?? 'the stream ended');
          else onPacket(data);
        }
      }
      if (!abort.signal.aborted) onError('the plugin ended the stream');
    } catch (err) {
      if (!abort.signal.aborted) onError(err instanceof Error ? err.message : String(err));
    }
  })();
  return () => abort.abort();
}
