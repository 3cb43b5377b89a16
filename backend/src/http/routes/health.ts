import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { redactUrl } from '../../config/redact';
import { freshnessOf } from '../../query/freshness';

const STORE_PING_TIMEOUT_MS = 1_000;

/** Liveness: open (see http/api.ts), and it touches nothing that could be slow. */
export const livenessRoutes: FastifyPluginAsync = async (app) => {
  app.get('/api/health/live', async () => ({ status: 'ok' }));
};

/** The store the service really uses, and whether it answers, in words "Save & test" can show. */
interface StoreCheck {
  kind: 'memory' | 'redis';
  status: 'ok' | 'down';
  /** Redis only, without its password. */
  url?: string;
  message: string;
}

export const healthRoutes: FastifyPluginAsync = async (app) => {
  app.get('/api/health', async (_request, reply) => {
    const store = await checkStore(app);
    // A store that lost a dataset answers pings like any other: ask it for what was synced.
    if (store.status === 'ok')
      await app.sync.checkStore(app.sync.specs().map((s) => s.name)).catch(() => undefined);
    const now = app.clock();
    const datasets = Object.fromEntries(
      app.sync.specs().map((spec) => {
        const status = app.sync.get(spec.name)!.status();
        const f = freshnessOf(spec, status, now);
        const state =
          status.state === 'failing'
            ? 'failing'
            : f.incomplete
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
    const checks = { store, datasets };
    if (store.status === 'down') return reply.status(503).send({ status: 'down', checks });
    const degraded = Object.values(datasets).some((d) => d.status !== 'ok');
    return { status: degraded ? 'degraded' : 'ok', checks };
  });
};

async function checkStore(app: FastifyInstance): Promise<StoreCheck> {
  if (app.store.kind === 'memory') {
    return {
      kind: 'memory',
      status: 'ok',
      message: 'the embedded in-memory store: its data is lost when the service restarts, then synced again',
    };
  }
  const url = app.config.redis ? redactUrl(app.config.redis.url) : undefined;
  const redis = url ? `Redis at ${url}` : 'Redis';
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      app.store.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${STORE_PING_TIMEOUT_MS} ms`)),
          STORE_PING_TIMEOUT_MS,
        );
      }),
    ]);
    return { kind: 'redis', status: 'ok', ...(url ? { url } : {}), message: `${redis} is reachable` };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return {
      kind: 'redis',
      status: 'down',
      ...(url ? { url } : {}),
      message: `${redis} is not reachable: ${reason}`,
    };
  } finally {
    clearTimeout(timer);
  }
}
