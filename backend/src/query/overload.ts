import underPressure from '@fastify/under-pressure';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { getHeapStatistics } from 'node:v8';
import type { Limits } from '../config/schema';

/** The only route shed under load: the one that computes. */
const QUERY_ROUTE = '/api/query';

/**
 * Seconds a client is asked to wait. Short: a computation slot frees within a request's
 * time, and a sampled event-loop delay or heap recovers within a sample or two.
 */
export const RETRY_AFTER_S = 2;

/**
 * Sheds `/api/query` when the process is overloaded, and only it: `/api/health/live` and
 * `/metrics` always answer (an orchestrator that sees liveness fail restarts the process,
 * which would turn a burst into an outage; Prometheus must see the overload to alert on it),
 * and the other routes are cheap.
 *
 * - `@fastify/under-pressure` samples the event-loop delay and the heap every second.
 *   `server.limits.maxEventLoopDelayMs` (200 ms by default) is a mean delay: with the
 *   engine's 10 ms slices (query/pace.ts) it stays near zero under any allowed load, so
 *   200 ms means the loop is blocked most of the time and every request, liveness
 *   included, already waits that long. `maxHeapUsedPercent` (85 %) is of V8's heap limit
 *   (which `--max-old-space-size` sets), so it follows the memory the process is given:
 *   above it, garbage collection starts to dominate and the next big answer risks running
 *   out of memory.
 * - The computation queue (query/gate.ts) reports a full queue on the refIds it refused;
 *   when the response is a 503 this adds `Retry-After`.
 */
const overload: FastifyPluginAsync<{ limits: Limits }> = async (app, { limits }) => {
  const heapLimit = getHeapStatistics().heap_size_limit;
  const maxHeapUsedBytes = Math.floor((heapLimit * limits.maxHeapUsedPercent) / 100);
  await app.register(underPressure, {
    maxEventLoopDelay: limits.maxEventLoopDelayMs,
    maxHeapUsedBytes,
    retryAfter: RETRY_AFTER_S,
    pressureHandler: (request, reply, type, value) => {
      // Returning without sending lets the request through.
      if (request.routeOptions.url !== QUERY_ROUTE) return;
      const why =
        type === 'eventLoopDelay'
          ? `event-loop delay ${Math.round(value ?? 0)} ms, limit ${limits.maxEventLoopDelayMs} ms (server.limits.maxEventLoopDelayMs)`
          : type === 'heapUsedBytes'
            ? `heap used ${mib(value ?? 0)}, limit ${mib(maxHeapUsedBytes)} (server.limits.maxHeapUsedPercent: ${limits.maxHeapUsedPercent} % of ${mib(heapLimit)})`
            : type;
      void reply
        .status(503)
        .header('retry-after', String(RETRY_AFTER_S))
        .send({
          error: 'Service Unavailable',
          message: `the service is overloaded (${why}); retry in ${RETRY_AFTER_S} s`,
        });
    },
  });
  app.addHook('onSend', async (request, reply, payload) => {
    if (
      reply.statusCode === 503 &&
      request.routeOptions.url === QUERY_ROUTE &&
      !reply.hasHeader('retry-after')
    )
      reply.header('retry-after', String(RETRY_AFTER_S));
    return payload;
  });
};

export const queryOverload = fp(overload, { name: 'livesync-query-overload', fastify: '5.x' });

function mib(bytes: number): string {
  return `${Math.round(bytes / 2 ** 20)} MiB`;
}
