import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

/**
 * Fastify's per-request log lines, one level down: a browser on a dashboard makes hundreds of
 * requests a minute, which at `info` bury everything else. At `LOG_LEVEL=debug` each request
 * is one line when it completes, with its method, URL (tokens masked by the logger's `req`
 * serializer), status and time in ms; `trace` adds the line when it arrives. A request that
 * fails while its response is written is still logged at `error`, as Fastify does.
 */
export class RequestLogController extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return;
    request.log.trace({ req: request }, 'incoming request');
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
    metadata?: Record<string, unknown>,
  ): void {
    if (error) {
      super.requestCompleted(error, request, reply, metadata);
      return;
    }
    if (this.isLogDisabled(request)) return;
    reply.log.debug(
      { req: request, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime },
      'request completed',
    );
  }
}

/** The `logController` option of the service's Fastify instance. */
export function requestLogController(): LogController {
  return new RequestLogController();
}
