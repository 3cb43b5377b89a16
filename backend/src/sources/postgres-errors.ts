import { SourceError, type ErrorClass } from './types';

/**
 * SQLSTATE classes and codes that retrying cannot fix: bad credentials (28), bad SQL or a
 * missing table/column/privilege (42), bad data (22), missing database or schema, an
 * unsupported feature. Everything else, including unknown failures, is retried: connection
 * loss (08), shutdown (57P01, 57P03), resources (53), serialization and deadlock (40001,
 * 40P01) and statement timeouts (57014) all pass.
 */
const PERMANENT_CLASSES = new Set(['28', '42', '22']);
const PERMANENT_CODES = new Set(['3D000', '3F000', '0A000']);

const SQLSTATE = /^[0-9A-Z]{5}$/;

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function classifyPgError(err: unknown): ErrorClass {
  const code = codeOf(err);
  if (code !== undefined && SQLSTATE.test(code)) {
    return PERMANENT_CLASSES.has(code.slice(0, 2)) || PERMANENT_CODES.has(code) ? 'permanent' : 'transient';
  }
  // The client refuses before the server answers when it needs a password it was not given.
  if (err instanceof Error && /^SASL: |password must be a string/.test(err.message)) return 'permanent';
  return 'transient';
}

/** Node reports a refused dual-stack connect as an AggregateError with an empty message. */
function describe(err: unknown): string {
  if (err instanceof AggregateError && err.message === '') {
    return err.errors.map(describe).join('; ') || codeOf(err) || 'connection failed';
  }
  if (!(err instanceof Error)) return String(err);
  const hint = (err as { hint?: unknown }).hint;
  const message = err.message || codeOf(err) || err.name;
  return typeof hint === 'string' && hint !== '' ? `${message} (${hint})` : message;
}

function isNetworkError(err: unknown): boolean {
  const code = codeOf(err);
  return code !== undefined && /^E[A-Z]+$/.test(code);
}

/** The passwords a connection string carries, in the spellings a message could quote. */
export function secretsOf(connectionString: string): string[] {
  const found = new Set<string>();
  try {
    const url = new URL(connectionString);
    for (const raw of [url.password, url.searchParams.get('password') ?? '']) {
      if (raw === '') continue;
      found.add(raw);
      found.add(decodeURIComponent(raw));
    }
  } catch {
    // Not a URL (e.g. a keyword/value string): nothing to recognise, and nothing of it is quoted.
  }
  return [...found];
}

export function redact(text: string, secrets: readonly string[]): string {
  return secrets.reduce((out, secret) => out.split(secret).join('***'), text);
}

/** A readable, password-free SourceError naming the dataset. */
export function toSourceError(dataset: string, err: unknown, secrets: readonly string[]): SourceError {
  if (err instanceof SourceError) return err;
  const prefix = isNetworkError(err) ? 'cannot reach PostgreSQL: ' : '';
  const message = redact(`${dataset}: ${prefix}${describe(err)}`, secrets);
  return new SourceError(message, classifyPgError(err), { cause: err });
}
