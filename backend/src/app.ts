import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config/load';
import { apiScope, previewScope, requireGuardedRoutes } from './http/api';
import { eventRoutes } from './http/routes/events';
import { ChangeBus } from './live/bus';
import { GrafanaLivePusher, liveChannel } from './live/grafana-push';
import { registerCompression } from './http/compression';
import { formatValidation, registerErrorHandling } from './http/errors';
import { typedBodyValidators } from './http/validation';
import { annotationRoutes } from './http/routes/annotations';
import { datasetRoutes } from './http/routes/datasets';
import { healthRoutes, livenessRoutes } from './http/routes/health';
import { type PreviewDirs, previewRoutes } from './http/preview';
import { metricsRoutes } from './http/routes/metrics';
import { opsRoutes } from './http/routes/ops';
import { queryRoutes } from './http/routes/query';
import { Metrics } from './observability/metrics';
import { requestLogController } from './observability/request-log';
import { instrumentSync } from './observability/sync-metrics';
import { MemoryCacheBackend, RedisCacheBackend, ResponseCache } from './query/cache';
import { queryOverload } from './query/overload';
import { QueryService } from './query/service';
import { RedisStore } from './store/redis';
import type { Store } from './store/types';
import type { SyncManager } from './sync/manager';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    store: Store;
    sync: SyncManager;
    metrics: Metrics;
    queries: QueryService;
    /** The change bus: every committed batch that changed data. */
    live: ChangeBus;
    /** The time freshness is judged by; tests set it. */
    clock: () => number;
  }
}

export interface AppDeps {
  config: Config;
  store: Store;
  sync: SyncManager;
  logger: Logger;
  /** Start the sync engines when the app is ready (tests that drive syncs themselves turn it off). */
  startSync?: boolean;
  clock?: () => number;
  /** Heartbeat period of SSE streams. */
  sseHeartbeatMs?: number;
  /** Replaces `fetch` for Grafana Live pushes (tests point it at a fake Grafana). */
  fetch?: typeof fetch;
  /** Serve the built preview at / (main.ts sets it when it is built; see http/preview.ts). */
  preview?: PreviewDirs | null;
}

/**
 * The service as a Fastify instance, apart from the code that listens, so tests
 * `inject` requests into the real thing.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, store, sync } = deps;
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: requestLogController(), // request lines at debug (observability/request-log.ts)
    bodyLimit: 256 * 1024,
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
    keepAliveTimeout: 72_000,
    ajv: { customOptions: { removeAdditional: false } },
    schemaController: { compilersFactory: { buildValidator: typedBodyValidators() } },
    schemaErrorFormatter: formatValidation,
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Our decorations, then hooks, then routes; the API's own plugins live in its scope (http/api.ts).
  const clock = deps.clock ?? Date.now;
  const metrics = new Metrics();
  // With Redis, answers are shared by the replicas and this process keeps those it serves in memory too.
  const cache =
    store instanceof RedisStore
      ? new ResponseCache(
          new RedisCacheBackend(store.redis, config.redis?.prefix ?? 'livesync'),
          undefined,
          new MemoryCacheBackend(),
        )
      : new ResponseCache(new MemoryCacheBackend());
  const queries = new QueryService(
    store,
    {
      get: (name) => sync.get(name)?.spec,
      all: () => sync.specs(),
      status: (name) => sync.get(name)!.status(),
      checkStore: (names) => sync.checkStore(names),
    },
    cache,
    clock,
    config.server.limits,
  );
  app.decorate('config', config);
  app.decorate('store', store);
  app.decorate('sync', sync);
  app.decorate('metrics', metrics);
  app.decorate('queries', queries);
  app.decorate('clock', clock);
  instrumentSync(sync, metrics);
  const bus = new ChangeBus(sync, { now: clock });
  app.decorate('live', bus);
  for (const spec of sync.specs())
    if (config.grafanaLive) liveChannel(config.grafanaLive.streamId, spec.name);
  const pusher =
    config.grafanaLive &&
    new GrafanaLivePusher(config.grafanaLive, {
      bus,
      store,
      spec: (name) => sync.get(name)?.spec,
      lastSyncAt: (name) => sync.get(name)?.status().lastSuccessAt ?? null,
      pushes: metrics.livePushes,
      log: deps.logger.child({ module: 'grafana-live' }),
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    });

  requireGuardedRoutes(app);
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ route, method: request.method }, reply.elapsedTime / 1000);
  });
  if (deps.startSync !== false) app.addHook('onReady', async () => sync.start());
  app.addHook('onClose', async () => {
    await sync.stop();
    bus.close();
    if (pusher) await pusher.close();
    await store.close();
  });

  registerErrorHandling(app);
  await registerCompression(app); // before the routes: its onRoute hook must see them
  await app.register(queryOverload, { limits: queries.limits }); // before the routes: its hooks must reach them
  await app.register(livenessRoutes);
  await app.register(metricsRoutes);
  await app.register(
    apiScope({
      apiKey: config.server.apiKey,
      rateLimitPerMinute: config.server.rateLimitPerMinute,
      routes: [
        healthRoutes,
        queryRoutes,
        datasetRoutes,
        opsRoutes,
        annotationRoutes,
        eventRoutes({ heartbeatMs: deps.sseHeartbeatMs }),
      ],
    }),
  );
  if (deps.preview) await app.register(previewScope(previewRoutes(deps.preview)));
  return app;
}
