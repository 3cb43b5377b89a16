import Fastify, { type FastifyBaseLogger } from 'fastify';
import type { DestinationStream } from 'pino';
import { childLogger, createLogger } from '../../src/observability/logger';

const SECRET = 's3cret-Value';

function capture(): {
  stream: DestinationStream;
  lines: () => Record<string, unknown>[];
  text: () => string;
} {
  const chunks: string[] = [];
  return {
    stream: { write: (chunk: string) => void chunks.push(chunk) },
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('createLogger', () => {
  it('never writes a secret, even at debug', () => {
    const out = capture();
    const logger = createLogger({ level: 'debug', destination: out.stream });
    logger.debug({ req: { headers: { authorization: `Bearer ${SECRET}` } } }, 'request');
    logger.debug({ headers: { authorization: `Bearer ${SECRET}`, 'x-api-key': SECRET } }, 'headers');
    logger.debug({ apiKey: SECRET, token: SECRET, password: SECRET }, 'top level');
    logger.debug({ config: { server: { apiKey: SECRET } } }, 'config');
    logger.debug({ user: { password: SECRET }, lease: { token: SECRET } }, 'one level down');
    logger.debug({ url: `postgres://app:${SECRET}@db/shop` }, 'url');
    logger.info(
      {
        dataset: {
          source: { url: `redis://:${SECRET}@cache:6379`, connectionString: `postgres://a:${SECRET}@b/c` },
        },
      },
      'deep url',
    );
    logger.debug(
      { source: { kind: 'http', headers: { Authorization: `Bearer ${SECRET}` } } },
      'source headers',
    );
    logger.debug({ list: [{ url: `https://api.test/x?token=${SECRET}` }] }, 'in a list');
    const child = logger.child({ url: `postgres://app:${SECRET}@db/shop`, apiKey: SECRET });
    child.debug('child bindings');
    expect(out.lines()).toHaveLength(10);
    expect(out.text()).not.toContain(SECRET);
    expect(out.text()).toContain('postgres://app:***@db/shop');
    expect(out.lines()[2]).toMatchObject({
      apiKey: '[redacted]',
      token: '[redacted]',
      password: '[redacted]',
    });
  });

  it('serializes requests without headers and with query tokens masked', () => {
    const out = capture();
    const logger = createLogger({ level: 'info', destination: out.stream });
    logger.info({
      req: {
        method: 'GET',
        url: `/api/stream?apiKey=${SECRET}`,
        headers: { authorization: SECRET },
        ip: '10.0.0.1',
      },
    });
    expect(out.lines()[0]?.['req']).toEqual({
      method: 'GET',
      url: '/api/stream?apiKey=***',
      remoteAddress: '10.0.0.1',
    });
  });

  it('keeps secrets out of Fastify request logs', async () => {
    const out = capture();
    const app = Fastify({
      loggerInstance: createLogger({ level: 'info', destination: out.stream }) as FastifyBaseLogger,
    });
    app.get('/api/stream', async () => ({ ok: true }));
    try {
      // A real request rather than inject(): light-my-request's ESM dependency does not load under jest here.
      const address = await app.listen({ host: '127.0.0.1', port: 0 });
      const response = await fetch(`${address}/api/stream?apiKey=${SECRET}`, {
        headers: { authorization: `Bearer ${SECRET}` },
      });
      expect(response.status).toBe(200);
    } finally {
      await app.close();
    }
    const incoming = out.lines().find((line) => line['msg'] === 'incoming request');
    expect(incoming?.['req']).toMatchObject({ method: 'GET', url: '/api/stream?apiKey=***' });
    expect(out.text()).not.toContain(SECRET);
  });

  it('takes its level from LOG_LEVEL, defaulting to info, and silent under NODE_ENV=test', () => {
    expect(createLogger({ env: {} }).level).toBe('info');
    expect(createLogger({ env: { LOG_LEVEL: 'debug' } }).level).toBe('debug');
    expect(createLogger({ env: { NODE_ENV: 'test' } }).level).toBe('silent');
    expect(createLogger({ env: { NODE_ENV: 'test', LOG_LEVEL: 'warn' } }).level).toBe('warn');
    expect(() => createLogger({ env: { LOG_LEVEL: 'loud' } })).toThrow(
      'LOG_LEVEL: unknown level "loud" (use one of fatal, error, warn, info, debug, trace, silent)',
    );
  });

  it('gives each module a child logger that names it', () => {
    const out = capture();
    childLogger(createLogger({ level: 'info', destination: out.stream }), 'sync').info('tick');
    expect(out.lines()[0]).toMatchObject({ module: 'sync', msg: 'tick' });
  });
});
