import { isPlainObject, type KeyPath } from './keypath';

export interface InterpolationProblem {
  path: KeyPath;
  message: string;
}

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string value of a parsed YAML tree
 * (never in keys) with values from `env`; `$${...}` is a literal `${...}`.
 *
 * It runs on the parsed tree rather than the file text so that a variable's value is
 * always one string: it can never add keys, lists or YAML syntax. `:-` uses the default
 * when the variable is unset or empty, as in POSIX shells and Docker Compose. A reference
 * to an unset variable without a default is a problem reported with its key path.
 */
export function interpolateEnv(
  tree: unknown,
  env: NodeJS.ProcessEnv,
): { value: unknown; problems: InterpolationProblem[] } {
  const problems: InterpolationProblem[] = [];
  const visit = (node: unknown, path: (string | number)[]): unknown => {
    if (typeof node === 'string') {
      const { value, errors } = interpolateString(node, env);
      for (const message of errors) problems.push({ path: [...path], message });
      return value;
    }
    if (Array.isArray(node)) return node.map((item, index) => visit(item, [...path, index]));
    if (isPlainObject(node)) {
      return Object.fromEntries(
        Object.entries(node).map(([key, item]) => [key, visit(item, [...path, key])]),
      );
    }
    return node;
  };
  const value = visit(tree, []);
  return { value, problems };
}

function interpolateString(text: string, env: NodeJS.ProcessEnv): { value: string; errors: string[] } {
  const errors: string[] = [];
  let out = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar < 0) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, dollar);
    const escaped = text.startsWith('$${', dollar);
    if (!escaped && !text.startsWith('${', dollar)) {
      out += '$';
      i = dollar + 1;
      continue;
    }
    const open = escaped ? dollar + 1 : dollar;
    const close = text.indexOf('}', open + 2);
    if (close < 0) {
      errors.push(`"\${" is not closed by "}" (write "$\${" for a literal "\${")`);
      out += text.slice(dollar);
      break;
    }
    i = close + 1;
    if (escaped) {
      out += text.slice(open, close + 1);
      continue;
    }
    const reference = text.slice(open + 2, close);
    const match = REFERENCE.exec(reference);
    if (!match) {
      errors.push(`"\${${reference}}" is not a variable reference (use \${NAME} or \${NAME:-default})`);
      continue;
    }
    const name = match[1] as string;
    const fallback = match[2];
    const value = env[name];
    if (fallback !== undefined) out += value === undefined || value === '' ? fallback : value;
    else if (value !== undefined) out += value;
    else errors.push(`environment variable ${name} is not set`);
  }
  return { value: out, errors };
}
