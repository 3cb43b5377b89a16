import type { FastifyError, FastifyInstance } from 'fastify';
import type { FastifySchemaValidationError } from 'fastify/types/schema';
import { QueryError } from '../query/errors';
import { StoreError, StoreUnavailableError } from '../store/types';

/** `/queries/0/aggregations` → `queries[0].aggregations` */
export function pointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .filter(Boolean)
    .map((part, i) =>
      /^\d+$/.test(part) ? `[${part}]` : `${i > 0 ? '.' : ''}${part.replace(/~1/g, '/').replace(/~0/g, '~')}`,
    )
    .join('');
}

/** Validation errors in words that name the field: `body.queries[0].format: must be one of timeseries, table`. */
export function formatValidation(errors: FastifySchemaValidationError[], part: string): Error {
  // A union of literals fails once per literal and once more as a whole: say it as one list.
  const literals = new Map<string, unknown[]>();
  for (const e of errors) {
    if (e.keyword !== 'const') continue;
    const allowed = (e.params as { allowedValue?: unknown }).allowedValue;
    literals.set(e.instancePath, [...(literals.get(e.instancePath) ?? []), allowed]);
  }
  const messages = errors.flatMap((e) => {
    const path = [part, pointerToPath(e.instancePath)].filter(Boolean).join('.').replace('.[', '[');
    const params = e.params as Record<string, unknown>;
    const union = literals.get(e.instancePath);
    if (union && e.keyword === 'const') return [];
    if (union && e.keyword === 'anyOf') return [`${path}: must be one of ${union.join(', ')}`];
    if (e.keyword === 'additionalProperties')
      return [`${path}: unknown field "${String(params.additionalProperty)}"`];
    if (e.keyword === 'required') return [`${path}: "${String(params.missingProperty)}" is required`];
    if (e.keyword === 'enum')
      return [`${path}: must be one of ${(params.allowedValues as unknown[]).join(', ')}`];
    if (e.keyword === 'type') return [`${path}: must be ${article(String(params.type))}`];
    return [`${path}: ${e.message ?? 'is invalid'}`];
  });
  return new Error([...new Set(messages)].join('; '));
}

/** JSON Schema type names as words: `integer` → `an integer`, `number` → `a finite number`. */
function article(type: string): string {
  if (type === 'number') return 'a finite number';
  if (type === 'integer') return 'an integer';
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/**
 * One error handler: 4xx messages go back to the client, 5xx never do; every server
 * error is logged once, with the request's method and route.
 */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.validation) {
      return reply.status(400).send({ error: 'Bad Request', message: err.message });
    }
    if (err instanceof QueryError) {
      return reply
        .status(err.statusCode)
        .send({ error: err.statusCode === 404 ? 'Not Found' : 'Bad Request', message: err.message });
    }
    const route = request.routeOptions.url ?? 'unmatched';
    if (err instanceof StoreUnavailableError) {
      app.metrics.requestErrors.inc({ route, origin: 'store' });
      request.log.warn({ err, origin: 'store', method: request.method, route }, 'store unavailable');
      return reply.status(503).header('retry-after', '5').send({
        error: 'Service Unavailable',
        message: 'the data store (Redis) cannot answer right now; try again shortly',
      });
    }
    const status = err.statusCode ?? 500;
    if (status < 500) {
      return reply.status(status).send({ error: httpReason(status), message: err.message });
    }
    const origin = err instanceof StoreError ? 'store' : 'internal';
    app.metrics.requestErrors.inc({ route, origin });
    request.log.error({ err, origin, method: request.method, route }, 'request failed');
    return reply
      .status(status)
      .send({ error: httpReason(status), message: 'internal error; see the service log' });
  });

  app.setNotFoundHandler((request, reply) => {
    reply
      .status(404)
      .send({ error: 'Not Found', message: `no route for ${request.method} ${request.url.split('?')[0]}` });
  });
}

function httpReason(status: number): string {
  const reasons: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    404: 'Not Found',
    413: 'Payload Too Large',
    415: 'Unsupported Media Type',
    429: 'Too Many Requests',
    500: 'Internal Server Error',
    503: 'Service Unavailable',
  };
  return reasons[status] ?? 'Error';
}
