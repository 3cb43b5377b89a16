import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

const OPEN_ROUTES = new Set(['/api/health/live']);

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * With an API key configured, every `/api/*` route but liveness needs
 * `Authorization: Bearer <key>`. Keys are compared as digests in constant time, so
 * neither the key's content nor its length leaks through timing.
 */
export function registerAuth(app: FastifyInstance, apiKey: string): void {
  if (!apiKey) return;
  const expected = digest(apiKey);
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0]!;
    if (!path.startsWith('/api/') || OPEN_ROUTES.has(path)) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (match && timingSafeEqual(digest(match[1]!.trim()), expected)) return;
    return reply
      .status(401)
      .header('www-authenticate', 'Bearer realm="livesync"')
      .send({
        error: 'Unauthorized',
        message: match ? 'the API key is wrong' : 'an API key is required: send Authorization: Bearer <key>',
      });
  });
}
