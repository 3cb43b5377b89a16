import type { FastifyPluginAsync } from 'fastify';
import { freshnessOf } from '../../query/freshness';

const STORE_PING_TIMEOUT_MS = 1_000;

/** Liveness: open (see http/api.ts), and it touches nothing that could be slow. */
export const livenessRoutes: FastifyPluginAsync = async (app) => {
  app.get('/api/health/live', async () => ({ status: 'ok' }));
};

export const healthRoutes: FastifyPluginAsync = async (app) => {
  app.get('/api/health', async (_request, reply) => {
    const redis = await pingStore(app.store.ping(), app.store.kind);
    const now = app.clock();
    const datasets = Object.fromEntries(
      app.sync.specs().map((spec) => {
        const status = app.sync.get(spec.name)!.status();
        const f = freshnessOf(spec, status, now);
        const state =
          status.state === 'failing'
            ? 'failing'
            : status.state === 'resyncing'
              ? 'resyncing'
              : status.lastSuccessAt === null
                ? 'syncing'
                : f.stale
                  ? 'stale'
                  : 'ok';
        return [
          spec.name,
          { status: state, ageSeconds: f.ageSeconds, ...(f.notice ? { message: f.notice.text } : {}) },
        ];
      }),
    );
    const checks = { redis, datasets };
    if (redis.status === 'down') return reply.status(503).send({ status: 'down', checks });
    const degraded = Object.values(datasets).some((d) => d.status !== 'ok');
    return { status: degraded ? 'degraded' : 'ok', checks };
  });
};

async function pingStore(
  ping: Promise<void>,
  kind: string,
): Promise<{ status: 'ok' | 'down'; message?: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ping,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${STORE_PING_TIMEOUT_MS} ms`)),
          STORE_PING_TIMEOUT_MS,
        );
      }),
    ]);
    return kind === 'memory' ? { status: 'ok', message: 'embedded in-memory store' } : { status: 'ok' };
  } catch (err) {
    return { status: 'down', message: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}
