/** One link of an RFC 8288 `Link` header: `<uri-reference>` then `; name=value` parameters. */
const LINK = /<([^>]*)>((?:\s*;\s*[^;,=\s]+(?:\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^;,\s]*))?)*)/g;
const PARAM = /;\s*([^;,=\s]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*))?/g;

/**
 * The target of the link with relation type `rel` in a `Link` header (RFC 8288), resolved
 * against the URL the response came from; null when there is none. A `rel` may list several
 * relation types, separated by spaces, in any case.
 */
export function linkTarget(header: string | null, rel: string, base: string): string | null {
  if (header === null) return null;
  for (const [, target = '', params = ''] of header.matchAll(LINK)) {
    for (const [, name = '', raw = ''] of params.matchAll(PARAM)) {
      if (name.toLowerCase() !== 'rel') continue;
      const value = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
      if (value.toLowerCase().split(/\s+/).includes(rel)) return new URL(target, base).href;
      // Only the first rel parameter counts (RFC 8288 section 3.3).
      break;
    }
  }
  return null;
}
