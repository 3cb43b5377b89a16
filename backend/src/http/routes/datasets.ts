import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { formatDuration } from '../../config/duration';
import { projectionOf, type DatasetSpec } from '../../config/dataset';
import { freshnessOf } from '../../query/freshness';
import { QueryError } from '../../query/errors';

/** Manual syncs of one dataset closer together than this are refused with 429. */
const MANUAL_SYNC_MIN_GAP_MS = 2_000;
const MANUAL_SYNC_WAIT_MS = 30_000;

const NameParams = Type.Object({ name: Type.String({ maxLength: 128 }) });

export function datasetSummary(app: FastifyInstance, spec: DatasetSpec) {
  const status = app.sync.get(spec.name)!.status();
  const fresh = freshnessOf(spec, status, app.clock());
  return {
    name: spec.name,
    source: { kind: spec.source.kind },
    dimensions: spec.dimensions,
    metrics: spec.metrics,
    distinct: spec.distinct,
    resolution: formatDuration(spec.resolutionMs),
    staleAfter: formatDuration(spec.staleAfterMs),
    retention: formatDuration(spec.retentionMs),
    sync: {
      interval: formatDuration(spec.sync.intervalMs),
      batchSize: spec.sync.batchSize,
      lag: formatDuration(spec.sync.lagMs),
      lookback: formatDuration(spec.sync.lookbackMs),
      reconcile: reconcileSummary(spec),
    },
    status: {
      state: status.state,
      lastSuccessAt: status.lastSuccessAt,
      lastAttemptAt: status.lastAttemptAt,
      nextAttemptAt: status.nextAttemptAt,
      ageSeconds: fresh.ageSeconds,
      stale: fresh.stale,
      incomplete: fresh.incomplete,
      resyncSince: status.resyncSince,
      notice: fresh.notice?.text ?? null,
      lastError: status.lastError,
      records: status.records,
      recordsApplied: status.recordsApplied,
      lastBatchDurationMs: status.lastBatchDurationMs,
      backfill: status.backfill,
      reconcile: status.reconcile,
    },
  };
}

function reconcileSummary(spec: DatasetSpec) {
  const { everyMs, pageSize, perRun } = spec.sync.reconcile;
  return { every: everyMs === null ? 'off' : formatDuration(everyMs), pageSize, perRun };
}

function specOf(app: FastifyInstance, name: string): DatasetSpec {
  const engine = app.sync.get(name);
  if (!engine)
    throw new QueryError(
      `unknown dataset "${name}" (known: ${app.sync
        .specs()
        .map((s) => s.name)
        .join(', ')})`,
      404,
    );
  return engine.spec;
}

export const datasetRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const lastManualSync = new Map<string, number>();

  app.get('/api/datasets', async () => {
    await app.sync.checkStore(app.sync.specs().map((spec) => spec.name));
    return { datasets: app.sync.specs().map((spec) => datasetSummary(app, spec)) };
  });

  app.get('/api/datasets/:name', { schema: { params: NameParams } }, async (request) => {
    const spec = specOf(app, request.params.name);
    await app.sync.checkStore([spec.name]);
    return datasetSummary(app, spec);
  });

  app.get(
    '/api/datasets/:name/values/:dimension',
    {
      schema: {
        params: Type.Object({
          name: Type.String({ maxLength: 128 }),
          dimension: Type.String({ maxLength: 128 }),
        }),
        querystring: Type.Object(
          {
            q: Type.Optional(Type.String({ maxLength: 256 })),
            limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const spec = specOf(app, request.params.name);
      const { dimension } = request.params;
      if (!spec.dimensions.includes(dimension)) {
        throw new QueryError(
          `dimension: "${dimension}" is not a dimension of ${spec.name} (known: ${spec.dimensions.join(', ')})`,
          404,
        );
      }
      const needle = request.query.q?.toLowerCase() ?? '';
      const groups = await app.store.readGroups(spec.name, projectionOf(spec.dimensions, [dimension]));
      const values = groups
        .map((g) => g[0])
        .filter((v): v is string => typeof v === 'string' && v.toLowerCase().includes(needle))
        .sort((a, b) => a.localeCompare(b))
        .slice(0, request.query.limit);
      return { values };
    },
  );

  app.post('/api/datasets/:name/sync', { schema: { params: NameParams } }, async (request, reply) => {
    const spec = specOf(app, request.params.name);
    const now = Date.now();
    const last = lastManualSync.get(spec.name) ?? 0;
    if (now - last < MANUAL_SYNC_MIN_GAP_MS) {
      const wait = Math.ceil((MANUAL_SYNC_MIN_GAP_MS - (now - last)) / 1000);
      return reply
        .status(429)
        .header('retry-after', String(wait))
        .send({
          error: 'Too Many Requests',
          message: `${spec.name} was synced moments ago; try again in ${wait} s`,
        });
    }
    lastManualSync.set(spec.name, now);
    const engine = app.sync.get(spec.name)!;
    const done = await Promise.race([
      engine.syncNow().then(() => true),
      new Promise<boolean>((resolve) => setTimeout(resolve, MANUAL_SYNC_WAIT_MS, false).unref()),
    ]);
    return reply.status(done ? 200 : 202).send(datasetSummary(app, spec));
  });
};
