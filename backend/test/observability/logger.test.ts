import Fastify, { type FastifyBaseLogger } from 'fastify';
import { childLogger, createLogger, type LogDestination } from '../../src/observability/logger';
import { harness } from '../http/harness';

const SECRET = 's3cret-Value';

function capture(options: { isTTY?: boolean } = {}): {
  stream: LogDestination;
  lines: () => Record<string, unknown>[];
  text: () => string;
} {
  const chunks: string[] = [];
  return {
    stream: { write: (chunk: string) => void chunks.push(chunk), ...options },
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

  it('takes its format from LOG_FORMAT, else pretty on a terminal and JSON lines elsewhere', () => {
    const line = (options: Parameters<typeof createLogger>[0], isTTY?: boolean) => {
      const out = capture(isTTY === undefined ? {} : { isTTY });
      createLogger({ level: 'info', ...options, destination: out.stream }).info({ n: 1 }, 'hello');
      return out.text();
    };
    expect(JSON.parse(line({ env: {} }))).toMatchObject({ level: 30, msg: 'hello', n: 1 });
    expect(JSON.parse(line({ env: {} }, false))).toMatchObject({ msg: 'hello' });
    expect(plain(line({ env: {} }, true))).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: hello \{"n":1\}\n$/);
    expect(plain(line({ env: { LOG_FORMAT: 'pretty' } }))).toMatch(/\] INFO: hello \{"n":1\}\n$/);
    expect(JSON.parse(line({ env: { LOG_FORMAT: 'json' } }, true))).toMatchObject({ msg: 'hello' });
    expect(JSON.parse(line({ format: 'json', env: { LOG_FORMAT: 'pretty' } }))).toMatchObject({
      msg: 'hello',
    });
    expect(() => createLogger({ env: { LOG_FORMAT: 'yaml' } })).toThrow(
      'LOG_FORMAT: unknown format "yaml" (use one of json, pretty)',
    );
  });

  it('writes one readable line a record on a terminal, with the module and without secrets', () => {
    const out = capture({ isTTY: true });
    const logger = createLogger({ level: 'debug', env: {}, destination: out.stream });
    childLogger(logger, 'sync').info({ dataset: 'events', records: 12 }, 'batch applied');
    logger.debug({ apiKey: SECRET, url: `postgres://app:${SECRET}@db/shop` }, 'configuration loaded');
    logger.debug({ headers: { authorization: `Bearer ${SECRET}` } }, 'headers');
    logger.child({ token: SECRET }).warn('child bindings');
    logger.error({ err: new Error('upstream down') }, 'sync failed');
    const text = plain(out.text());
    expect(text).not.toContain(SECRET);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/\] INFO: \(sync\) batch applied \{"dataset":"events","records":12\}$/);
    expect(lines[1]).toContain(
      'DEBUG: configuration loaded {"apiKey":"[redacted]","url":"postgres://app:***@db/shop"}',
    );
    expect(lines[2]).toContain('DEBUG: headers {"headers":{"authorization":"[redacted]"}}');
    expect(lines[3]).toContain('WARN: child bindings {"token":"[redacted]"}');
    expect(lines[4]).toContain('ERROR: sync failed');
    expect(text).toContain('Error: upstream down');
    expect(text).not.toMatch(/^\{/m);
  });

  it("logs the service's requests at debug, not info, without secrets", async () => {
    const requestLines = async (level: string, format?: 'json' | 'pretty') => {
      const out = capture();
      const logger = createLogger({ level, ...(format ? { format } : {}), env: {}, destination: out.stream });
      const { app } = await harness({ logger });
      try {
        const address = await app.listen({ host: '127.0.0.1', port: 0 });
        const response = await fetch(`${address}/api/datasets?apiKey=${SECRET}`, {
          headers: { authorization: `Bearer ${SECRET}` },
        });
        expect(response.status).toBe(200);
      } finally {
        await app.close();
      }
      return out;
    };

    const atInfo = await requestLines('info');
    expect(atInfo.text()).not.toContain('/api/datasets');
    expect(atInfo.lines().filter((line) => /request/.test(String(line['msg'])))).toEqual([]);

    const atDebug = await requestLines('debug');
    expect(atDebug.text()).not.toContain(SECRET);
    const requests = atDebug.lines().filter((line) => /request/.test(String(line['msg'])));
    expect(requests).toEqual([
      expect.objectContaining({
        level: 20,
        msg: 'request completed',
        req: expect.objectContaining({ method: 'GET', url: '/api/datasets?apiKey=***' }),
        res: { statusCode: 200 },
        responseTime: expect.any(Number),
      }),
    ]);

    const atTrace = await requestLines('trace');
    expect(atTrace.lines().filter((line) => /request/.test(String(line['msg'])))).toEqual([
      expect.objectContaining({ level: 10, msg: 'incoming request' }),
      expect.objectContaining({ level: 20, msg: 'request completed' }),
    ]);

    const pretty = plain((await requestLines('debug', 'pretty')).text());
    expect(pretty).not.toContain(SECRET);
    expect(pretty).toMatch(/DEBUG: request completed \{.*"url":"\/api\/datasets\?apiKey=\*\*\*"/);
  });
});

/** Without colours, whatever the terminal the tests run in supports. */
function plain(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, '');
}
