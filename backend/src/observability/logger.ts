import { pino, type DestinationStream, type Logger, type LoggerOptions as PinoOptions } from 'pino';
import { isColorSupported, prettyFactory } from 'pino-pretty';
import { redactUrl } from '../config/redact';

export type { Logger };

/** `json`: one JSON object a line, for machines. `pretty`: one readable line a record, for people. */
export type LogFormat = 'json' | 'pretty';

/** A place to write lines; `isTTY` as on `process.stdout` says whether a person is reading it. */
export type LogDestination = DestinationStream & { isTTY?: boolean };

export interface LoggerOptions {
  /** Overrides `LOG_LEVEL`. */
  level?: string;
  /** Overrides `LOG_FORMAT`. */
  format?: LogFormat;
  /** Where `LOG_LEVEL`, `LOG_FORMAT` and `NODE_ENV` are read; `process.env` by default. */
  env?: NodeJS.ProcessEnv;
  /** Where lines are written; stdout by default. */
  destination?: LogDestination;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const FORMATS: readonly LogFormat[] = ['json', 'pretty'];

/**
 * Secrets at the places they are usually logged. Pino removes them while writing the
 * line, at every level, so a secret never reaches the output even at debug.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["x-api-key"]',
  '*.headers.authorization',
  'apiKey',
  '*.apiKey',
  'token',
  '*.token',
  'password',
  '*.password',
  'config.server.apiKey',
];

/** Keys whose string values are connection strings or URLs: their passwords and tokens are masked. */
const URL_KEYS = new Set(['url', 'connectionString', 'dsn', 'databaseUrl', 'redisUrl']);
/** Keys that hold a secret whatever their case or depth (HTTP source headers are written `Authorization`). */
const SECRET_KEYS = new Set([
  'authorization',
  'cookie',
  'x-api-key',
  'apikey',
  'token',
  'password',
  'secret',
]);
const MAX_DEPTH = 6;

/**
 * The service's logger, through pino, with secrets redacted.
 *
 * Level: `options.level`, else `LOG_LEVEL`, else `silent` under `NODE_ENV=test` (so tests
 * stay quiet unless asked) and `info` otherwise.
 *
 * Format: `options.format`, else `LOG_FORMAT`, else `pretty` when the destination is a
 * terminal (`npm start` in a shell) and `json` otherwise (a container, a file, a pipe).
 * Pretty lines are made from the JSON line pino has already written, redacted, so both
 * formats hide the same secrets.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const env = options.env ?? process.env;
  const level = options.level ?? (env['LOG_LEVEL'] || (env['NODE_ENV'] === 'test' ? 'silent' : 'info'));
  if (!LEVELS.includes(level)) {
    throw new Error(`LOG_LEVEL: unknown level "${level}" (use one of ${LEVELS.join(', ')})`);
  }
  const config: PinoOptions = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { log: (object) => maskSecrets(object, 0) as Record<string, unknown> },
    // Serializers also apply to child-logger bindings, which the log formatter never sees.
    serializers: {
      url: maskUrl,
      connectionString: maskUrl,
      req: serializeRequest,
      err: pino.stdSerializers.err,
    },
  };
  if (logFormat(options) === 'pretty') {
    const out = options.destination ?? pino.destination({ dest: 1, sync: true });
    return pino(config, prettyDestination(out, isTerminal(options)));
  }
  return options.destination ? pino(config, options.destination) : pino(config);
}

/** The format `createLogger` writes with these options: `options.format`, `LOG_FORMAT`, or what the destination is. */
export function logFormat(options: LoggerOptions = {}): LogFormat {
  const format = options.format ?? ((options.env ?? process.env)['LOG_FORMAT'] || undefined);
  if (format === undefined) return isTerminal(options) ? 'pretty' : 'json';
  if (!FORMATS.includes(format as LogFormat)) {
    throw new Error(`LOG_FORMAT: unknown format "${format}" (use one of ${FORMATS.join(', ')})`);
  }
  return format as LogFormat;
}

function isTerminal(options: LoggerOptions): boolean {
  return (options.destination ?? process.stdout).isTTY === true;
}

/**
 * Writes each JSON line as one readable line: `[12:00:00.000] INFO (sync): message {"key":"value"}`.
 * Synchronous (no worker thread, no transform stream), so the last lines before an exit are
 * not lost. Colours only on a terminal that supports them (`NO_COLOR` turns them off).
 */
function prettyDestination(out: LogDestination, terminal: boolean): DestinationStream {
  const prettify = prettyFactory({
    colorize: terminal && isColorSupported,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,module',
    messageFormat: '{if module}({module}) {end}{msg}',
    singleLine: true,
  });
  return { write: (line: string) => void out.write(prettify(line)) };
}

/** The logger of one module: every line carries `module`, so a module's lines can be picked out. */
export function childLogger(parent: Logger, module: string): Logger {
  return parent.child({ module });
}

function maskUrl(value: unknown): unknown {
  return typeof value === 'string' ? redactUrl(value) : value;
}

/** Like Fastify's request serializer, without headers, and with tokens in the query string masked. */
function serializeRequest(req: unknown): unknown {
  if (typeof req !== 'object' || req === null) return req;
  const { method, url, hostname, ip, socket } = req as {
    method?: string;
    url?: string;
    hostname?: string;
    ip?: string;
    socket?: { remotePort?: number };
  };
  return {
    method,
    url: typeof url === 'string' ? redactUrl(url) : url,
    host: hostname,
    remoteAddress: ip,
    remotePort: socket?.remotePort,
  };
}

function isPlain(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Masks URL passwords and secret keys at any depth of a log object, copying only what
 * changes. Objects other than plain ones and arrays (errors, requests) are left to their
 * serializers.
 */
function maskSecrets(value: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item: unknown, index) => {
      const masked = maskSecrets(item, depth + 1);
      if (masked !== item) (copy ??= [...value])[index] = masked;
    });
    return copy ?? value;
  }
  if (!isPlain(value)) return value;
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value)) {
    let masked = item;
    if (SECRET_KEYS.has(key.toLowerCase()) && item !== undefined && item !== null && item !== '') {
      masked = '[redacted]';
    } else if (URL_KEYS.has(key) && typeof item === 'string') masked = redactUrl(item);
    else masked = maskSecrets(item, depth + 1);
    if (masked !== item) (copy ??= { ...value })[key] = masked;
  }
  return copy ?? value;
}
