import type { FastifyPluginAsync } from 'fastify';

/** Prometheus exposition of the service's own registry; dataset ages are brought up to date at scrape time. */
export const metricsRoutes: FastifyPluginAsync = async (app) => {
  // A dataset that never synced is as old as the service: its age alert must still fire.
  const startedAt = Date.now();
  app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
    const now = app.clock();
    for (const spec of app.sync.specs()) {
      const status = app.sync.get(spec.name)!.status();
      app.metrics.staleThreshold.set({ dataset: spec.name }, spec.staleAfterMs / 1000);
      if (status.lastSuccessAt !== null)
        app.metrics.lastSuccess.set({ dataset: spec.name }, status.lastSuccessAt / 1000);
      app.metrics.age.set({ dataset: spec.name }, (now - (status.lastSuccessAt ?? startedAt)) / 1000);
      const lease = app.sync.get(spec.name)!.lease.status();
      app.metrics.leaseHeld.set({ dataset: spec.name }, lease.held ? 1 : 0);
      if (lease.token !== null) app.metrics.leaseToken.set({ dataset: spec.name }, lease.token);
    }
    reply.header('content-type', app.metrics.registry.contentType);
    return app.metrics.registry.metrics();
  });
};
