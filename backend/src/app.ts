import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import type { Config } from './config/load';
import { formatValidation, registerErrorHandling } from './http/errors';
import { queryRoutes } from './http/routes/query';
import type { Store } from './store/types';
import type { SyncManager } from './sync/manager';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    store: Store;
    sync: SyncManager;
  }
}

export interface AppDeps {
  config: Config;
  store: Store;
  sync: SyncManager;
  logger: Logger;
  /** Start the sync engines when the app is ready (tests that drive syncs themselves turn it off). */
  startSync?: boolean;
}

/**
 * The service as a Fastify instance, apart from the code that listens, so tests
 * `inject` requests into the real thing.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
    keepAliveTimeout: 72_000,
    ajv: { customOptions: { removeAdditional: false, allErrors: false } },
    schemaErrorFormatter: formatValidation,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorate('config', deps.config);
  app.decorate('store', deps.store);
  app.decorate('sync', deps.sync);

  if (deps.startSync !== false) app.addHook('onReady', async () => deps.sync.start());
  app.addHook('onClose', async () => {
    await deps.sync.stop();
    await deps.store.close();
  });

  registerErrorHandling(app);
  await app.register(queryRoutes);
  return app;
}
