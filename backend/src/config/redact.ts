const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/** Query parameters and libpq `key=value` settings whose values are secrets. */
const SECRET_SETTING =
  /(^|[?&;\s])((?:ssl)?password|pass|pwd|token|access_token|secret|api[_-]?key|key|auth|authorization|signature|sig)(\s*=\s*)('(?:[^'\\]|\\.)*'|[^&#;\s]*)/gi;

/**
 * A connection string or URL with its secrets replaced by `***`, safe for logs and status
 * output: the password of the user-info (`postgres://app:***@db/events`,
 * `redis://:***@cache:6379`), secret query parameters (`?password=***`, `?token=***`) and
 * libpq settings (`host=db password=***`). Anything else is returned unchanged.
 *
 * It errs toward hiding too much: an `@` in the path of a URL with a port may mask the
 * host, which is better than printing a password that contains `/` or `@`.
 */
export function redactUrl(url: string): string {
  let out = url;
  const scheme = SCHEME.exec(out);
  if (scheme) {
    const rest = out.slice(scheme[0].length);
    // The user-info ends at the last `@` before the query: passwords may hold unescaped `@` or `/`.
    const queryStart = rest.search(/[?#]/);
    const at = rest.lastIndexOf('@', queryStart < 0 ? rest.length : queryStart);
    if (at >= 0) {
      const userInfo = rest.slice(0, at);
      const colon = userInfo.indexOf(':');
      if (colon >= 0) {
        out = `${scheme[0]}${userInfo.slice(0, colon)}:***${rest.slice(at)}`;
      }
    }
  }
  return out.replace(
    SECRET_SETTING,
    (_match, lead: string, key: string, eq: string) => `${lead}${key}${eq}***`,
  );
}
