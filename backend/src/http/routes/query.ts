import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { QueryError } from '../../query/errors';
import { runMetricsQuery } from '../../query/engine';
import type { DataFrame } from '../../query/frames';
import { StoreUnavailableError } from '../../store/types';

const Name = Type.String({ minLength: 1, maxLength: 128 });

export const MetricsQuerySchema = Type.Object(
  {
    refId: Type.String({ minLength: 1, maxLength: 64 }),
    dataset: Name,
    aggregations: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 32 }),
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
        from: Type.Integer({ minimum: 0, description: 'epoch ms' }),
        to: Type.Integer({ minimum: 0, description: 'epoch ms' }),
      },
      { additionalProperties: false },
    ),
    intervalMs: Type.Integer({ minimum: 1, default: 60_000 }),
    maxDataPoints: Type.Integer({ minimum: 1, maximum: 100_000, default: 1500 }),
    queries: Type.Array(MetricsQuerySchema, { minItems: 1, maxItems: 32 }),
  },
  { additionalProperties: false },
);

interface RefIdResult {
  frames?: DataFrame[];
  error?: string;
  status?: number;
}

export const queryRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/api/query', { schema: { body: QueryRequestSchema } }, async (request, reply) => {
    const { range, intervalMs, maxDataPoints, queries } = request.body;
    if (range.from >= range.to) throw new QueryError('range: from must be before to');
    const results: Record<string, RefIdResult> = {};
    await Promise.all(
      queries.map(async (query, i) => {
        const where = `queries[${i}]`;
        try {
          const engine = app.sync.get(query.dataset);
          if (!engine) throw new QueryError(`${where}.dataset: unknown dataset "${query.dataset}"`, 404);
          const { frames, plan } = await runMetricsQuery(app.store, engine.spec, query, range, intervalMs, maxDataPoints, where);
          const status = engine.status();
          for (const frame of frames) {
            frame.schema.meta = { custom: { lastSyncAt: status.lastSuccessAt, stepMs: plan.stepMs, tierMs: plan.tierMs } };
          }
          results[query.refId] = { frames };
        } catch (err) {
          if (!(err instanceof QueryError)) throw err;
          results[query.refId] = { error: err.message, status: err.statusCode };
        }
      }),
    );
    const failed = Object.values(results).filter((r) => r.error);
    if (failed.length === queries.length) {
      return reply.status(failed[0]!.status ?? 400).send({ message: failed.map((f) => f.error).join('; '), results });
    }
    return { results };
  });
};

export { StoreUnavailableError };
