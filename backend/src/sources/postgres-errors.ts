import { asErrorLike, codeOf, messageOf } from './error-text';
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

export function classifyPgError(err: unknown): ErrorClass {
  const code = codeOf(err);
  if (code !== undefined && SQLSTATE.test(code)) {
    return PERMANENT_CLASSES.has(code.slice(0, 2)) || PERMANENT_CODES.has(code) ? 'permanent' : 'transient';
  }
  // The client refuses before the server answers when it needs a password it was not given.
  if (/^SASL: |password must be a string/.test(messageOf(err))) return 'permanent';
  return 'transient';
}

/**
 * Refusals that the dataset's configuration must fix rather than the database: credentials
 * (28), a missing table, column or privilege, bad SQL in `query:` (42), a missing database
 * or schema.
 */
const CONFIG_CLASSES = new Set(['28', '42']);
const CONFIG_CODES = new Set(['3D000', '3F000']);

function originOfPgError(err: unknown): 'upstream' | 'config' {
  const code = codeOf(err);
  if (code === undefined || !SQLSTATE.test(code)) return 'upstream';
  return CONFIG_CLASSES.has(code.slice(0, 2)) || CONFIG_CODES.has(code) ? 'config' : 'upstream';
}

/** The server's message, with its hint when it gives one (e.g. "Perhaps you meant ..."). */
function describe(err: unknown): string {
  const hint = asErrorLike(err)?.hint;
  const message = messageOf(err);
  return typeof hint === 'string' && hint !== '' ? `${message} (${hint})` : message;
}

function isNetworkError(err: unknown): boolean {
  return /^E[A-Z]+$/.test(codeOf(err) ?? '');
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
  return new SourceError(message, classifyPgError(err), { cause: err, origin: originOfPgError(err) });
}
