import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { bodyKey, serializeResults } from '../../query/service';
import { chooseEncoding, EncodedBodies } from '../compression';

const Name = Type.String({ minLength: 1, maxLength: 128 });

export const QueryItemSchema = Type.Object(
  {
    refId: Type.String({ minLength: 1, maxLength: 64 }),
    kind: Type.Optional(
      Type.Union([Type.Literal('metrics'), Type.Literal('freshness'), Type.Literal('status')]),
    ),
    dataset: Type.Optional(Type.String({ maxLength: 128 })),
    aggregations: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 32 })),
    groupBy: Type.Optional(Type.Array(Name, { maxItems: 4, uniqueItems: true })),
    filters: Type.Optional(
      Type.Record(Name, Type.Array(Type.String({ maxLength: 256 }), { minItems: 1, maxItems: 1000 }), {
        maxProperties: 4,
      }),
    ),
    format: Type.Optional(Type.Union([Type.Literal('timeseries'), Type.Literal('table')])),
  },
  { additionalProperties: false },
);

export const QueryRequestSchema = Type.Object(
  {
    range: Type.Object(
      {
        from: Type.Integer({ minimum: 0, maximum: 8.64e15, description: 'epoch ms' }),
        to: Type.Integer({ minimum: 0, maximum: 8.64e15, description: 'epoch ms' }),
      },
      { additionalProperties: false },
    ),
    intervalMs: Type.Integer({ minimum: 1, maximum: 31_536_000_000, default: 60_000 }),
    maxDataPoints: Type.Integer({ minimum: 1, maximum: 100_000, default: 1500 }),
    queries: Type.Array(QueryItemSchema, { minItems: 1, maxItems: 32 }),
  },
  { additionalProperties: false },
);

/** `X-Cache-Skip: true` (Grafana's own header) or `Cache-Control: no-cache` skips the response cache. */
function wantsBypass(headers: Record<string, string | string[] | undefined>): boolean {
  const skip = headers['x-cache-skip'];
  const control = headers['cache-control'];
  return (
    (typeof skip === 'string' && skip.toLowerCase() === 'true') ||
    (typeof control === 'string' && /(^|,)\s*no-(cache|store)\b/i.test(control))
  );
}

export const queryRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const bodies = new EncodedBodies();
  app.post('/api/query', { schema: { body: QueryRequestSchema } }, async (request, reply) => {
    const bypass = wantsBypass(request.headers);
    const ifNoneMatch = request.headers['if-none-match'];
    const outcome = await app.queries.execute(request.body, { bypass, ifNoneMatch });
    const dashboard = app.metrics.dashboardLabel(request.headers['x-dashboard-uid'] as string | undefined);
    for (const { dataset, kind } of outcome.answered) {
      app.metrics.queries.inc({ dataset, kind });
      app.metrics.dashboardQueries.inc({ dashboard });
    }
    // One validator for every coding of an answer: it names the data answered, not the bytes.
    reply
      .header('cache-control', 'private, no-cache')
      .header('etag', outcome.etag)
      .header('vary', 'accept-encoding');
    if (outcome.results === null) {
      app.metrics.cacheRequests.inc({ layer: 'http', result: 'not_modified' });
      return reply.status(304).header('x-cache', 'HIT').send();
    }
    app.metrics.cacheRequests.inc({ layer: 'http', result: bypass ? 'bypass' : 'miss' });
    for (const result of outcome.cache) app.metrics.cacheRequests.inc({ layer: 'response', result });
    const xcache = bypass ? 'BYPASS' : outcome.cache.every((r) => r === 'hit') ? 'HIT' : 'MISS';
    reply.header('x-cache', xcache);
    const results = outcome.results;
    const failed = Object.values(results).filter((r) => r.error);
    const message =
      failed.length === request.body.queries.length ? failed.map((f) => f.error).join('; ') : undefined;
    if (message !== undefined) reply.status(failed[0]!.status ?? 400);
    const { body, encoding } = await bodies.get(
      bodyKey(results, message),
      chooseEncoding(request.headers['accept-encoding']),
      () => serializeResults(results, message),
    );
    if (encoding) reply.header('content-encoding', encoding);
    return reply.type('application/json; charset=utf-8').send(body);
  });
};
