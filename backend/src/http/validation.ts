import { AjvCompiler } from '@fastify/ajv-compiler';
import type { FastifyServerOptions } from 'fastify';

type BuildValidator = NonNullable<
  NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator']
>;

/**
 * Validators that take a JSON body as typed: numbers must be numbers. Fastify's default
 * coercion suits the query string, where everything arrives as text, but on a body it turns
 * `"Infinity"` into `Infinity`, which Ajv's `maximum` then lets through. The query string
 * and route parameters keep the default coercion.
 */
export function typedBodyValidators(): BuildValidator {
  const pool = AjvCompiler();
  return (externalSchemas, options = {}) => {
    const coercing = pool(externalSchemas, options);
    const customOptions = { ...(options.customOptions as Record<string, unknown>), coerceTypes: false };
    const typed = pool(externalSchemas, { ...options, customOptions } as typeof options);
    return (route) => (route.httpPart === 'body' ? typed(route) : coercing(route));
  };
}
