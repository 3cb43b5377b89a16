import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyPluginAsync, RouteOptions } from 'fastify';
import { registerAuth } from './auth';

/**
 * The only routes anyone may call without the API key: liveness for orchestrators and the
 * Prometheus scrape. Every other route is inside the guarded scope or refused at boot.
 */
export const OPEN_ROUTES: ReadonlySet<string> = new Set(['/api/health/live', '/metrics']);

/** Set on the guarded scope (and so seen by everything registered inside it). */
const GUARDED = 'livesyncGuarded';
/** Set on the preview's scope: pages a browser loads, served only when configured to be. */
const PREVIEW = 'livesyncPreview';

export interface ApiScopeOptions {
  apiKey: string;
  rateLimitPerMinute: number;
  routes: FastifyPluginAsync[];
}

/**
 * Deny by default: refuses at boot any route registered outside the guarded scope and the
 * preview that is not in {@link OPEN_ROUTES}, so a new route cannot be left open by mistake.
 * Register it on the root instance before any route.
 */
export function requireGuardedRoutes(app: FastifyInstance): void {
  app.addHook('onRoute', function (route: RouteOptions) {
    if (this.hasDecorator(GUARDED) || this.hasDecorator(PREVIEW) || OPEN_ROUTES.has(route.url)) return;
    throw new Error(
      `${route.method} ${route.url} is outside the authenticated /api scope and not declared open (http/api.ts)`,
    );
  });
}

/**
 * One encapsulated scope for every `/api` route but liveness. Its hooks (rate limit, then the
 * API key) belong to the scope, so they run on the route the router matched, whatever
 * spelling of the path reached it (`/%61pi/...`, absolute-form targets): the check can never
 * disagree with the router about which route a request is for.
 */
export function apiScope(options: ApiScopeOptions): FastifyPluginAsync {
  return async (api) => {
    api.decorate(GUARDED, true);
    if (options.rateLimitPerMinute > 0) {
      await api.register(rateLimit, { max: options.rateLimitPerMinute, timeWindow: 60_000 });
    }
    registerAuth(api, options.apiKey);
    for (const routes of options.routes) await api.register(routes);
  };
}

/** The preview's pages: outside the API, and served at all only when enabled (see http/preview.ts). */
export function previewScope(routes: FastifyPluginAsync): FastifyPluginAsync {
  return async (scope) => {
    scope.decorate(PREVIEW, true);
    await scope.register(routes);
  };
}
