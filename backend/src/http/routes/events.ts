import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ServerResponse } from 'node:http';
import { QueryError } from '../../query/errors';
import type { FreshnessUpdate } from '../../query/status-frames';
import type { ChangeEvent } from '../../sync/engine';

export interface EventStreamOptions {
  heartbeatMs?: number;
}

/**
 * `GET /api/datasets/:name/events`: the dataset's changes and freshness updates as
 * server-sent events, for clients without Grafana Live. Heartbeat comments keep proxies from closing an idle
 * stream; every stream is ended cleanly when the service shuts down.
 */
export function eventRoutes(options: EventStreamOptions = {}): FastifyPluginAsyncTypebox {
  return async (app) => {
    const open = new Set<ServerResponse>();
    // Before the server stops accepting: it waits for open connections, and these never end on their own.
    app.addHook('preClose', async () => {
      for (const res of open) res.end();
    });

    app.get(
      '/api/datasets/:name/events',
      { schema: { params: Type.Object({ name: Type.String({ maxLength: 128 }) }) } },
      async (request, reply) => {
        const engine = app.sync.get(request.params.name);
        if (!engine) throw new QueryError(`unknown dataset "${request.params.name}"`, 404);
        const name = engine.spec.name;
        const headers = {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          // Proxies such as nginx would otherwise buffer the stream.
          'x-accel-buffering': 'no',
        };
        // HEAD (which Fastify routes here too) gets the stream's headers and nothing more.
        if (request.method === 'HEAD') return reply.headers(headers).send();
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, { ...headers, connection: 'keep-alive' });
        const send = (event: string, data: unknown, id?: number) =>
          res.write(
            `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`,
          );
        const freshness = app.live.freshness.current(name)!;
        res.write('retry: 3000\n\n');
        send('hello', { dataset: name, version: freshness.version, freshness });

        const onChange = (event: ChangeEvent) => {
          if (event.dataset === name) send('change', event, event.version);
        };
        const onFreshness = (update: FreshnessUpdate) => {
          if (update.dataset === name) send('freshness', update);
        };
        const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), options.heartbeatMs ?? 15_000);
        app.live.on('change', onChange);
        app.live.on('freshness', onFreshness);
        open.add(res);
        app.metrics.sseClients.inc();
        const cleanup = () => {
          clearInterval(heartbeat);
          app.live.off('change', onChange);
          app.live.off('freshness', onFreshness);
          if (open.delete(res)) app.metrics.sseClients.dec();
        };
        res.on('close', cleanup);
      },
    );
  };
}
