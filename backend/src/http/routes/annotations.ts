import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { QueryError } from '../../query/errors';
import type { SyncEvent } from '../../store/types';

const Annotation = Type.Object({
  time: Type.Number(),
  timeEnd: Type.Number(),
  title: Type.String(),
  text: Type.String(),
  tags: Type.Array(Type.String()),
});

function describe(dataset: string, event: SyncEvent) {
  const duration = event.endedAt - event.startedAt;
  const ok = event.outcome === 'success';
  const parts = [`${event.records} records applied`, `took ${duration} ms`];
  if (event.error)
    parts.push(`${event.error.origin ?? 'upstream'} error (${event.error.class}): ${event.error.message}`);
  return {
    time: event.startedAt,
    timeEnd: event.endedAt,
    title: ok ? `${dataset} synced` : `${dataset} sync failed`,
    text: parts.join('; '),
    tags: ['sync', ok ? 'success' : 'failure', dataset],
  };
}

/** Sync runs as Grafana annotations: the "last updated" markers on a graph. */
export const annotationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/api/annotations',
    {
      schema: {
        querystring: Type.Object(
          {
            dataset: Type.Optional(Type.String({ maxLength: 128 })),
            from: Type.Integer({ minimum: 0 }),
            to: Type.Integer({ minimum: 0 }),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
            /** Only runs that applied records or failed: a quiet dataset makes no noise. */
            changesOnly: Type.Boolean({ default: false }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(Annotation) },
      },
    },
    async (request) => {
      const { dataset, from, to, limit, changesOnly } = request.query;
      if (from > to) throw new QueryError('from: must not be after to');
      const names = dataset ? [dataset] : app.sync.specs().map((s) => s.name);
      for (const name of names) {
        if (!app.sync.get(name)) throw new QueryError(`dataset: unknown dataset "${name}"`, 404);
      }
      const perDataset = await Promise.all(
        names.map(async (name) =>
          (await app.store.readEvents(name, from, to, changesOnly ? 1000 : limit))
            .filter((e) => !changesOnly || e.records > 0 || e.outcome === 'failure')
            .map((e) => describe(name, e)),
        ),
      );
      return perDataset
        .flat()
        .sort((a, b) => b.time - a.time)
        .slice(0, limit);
    },
  );
};
