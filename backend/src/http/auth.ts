import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * With an API key configured, every route of the scope needs `Authorization: Bearer <key>`.
 * The hook belongs to the scope (see http/api.ts), so it never looks at the path. Keys are
 * compared as digests in constant time, so neither the key's content nor its length leaks
 * through timing.
 */
export function registerAuth(scope: FastifyInstance, apiKey: string): void {
  if (!apiKey) return;
  const expected = digest(apiKey);
  scope.addHook('onRequest', async (request, reply) => {
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
