import { KindGuard, Type, type Static, type TSchema, type TUnion } from '@sinclair/typebox';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { DURATION_PATTERN } from './duration';
import { RECONCILE_EVERY_PATTERN } from './reconcile';
import { CURSOR_TYPES, CURSOR_TYPE_PATTERN } from './schema';
import { redactUrl } from './redact';
import { isPlainObject, keyPathOfPointer, type KeyPath } from './keypath';

export interface Problem {
  path: KeyPath;
  message: string;
}

/**
 * What each pattern of the config schema asks for, in words. A test walks the schema to
 * keep this list complete.
 */
export const PATTERN_HINTS: Readonly<Record<string, string>> = {
  [DURATION_PATTERN]: 'must be a duration like 5s, 2m, 1h',
  [RECONCILE_EVERY_PATTERN]: 'must be a duration like 30m, 1h, or off',
  '^[a-z0-9_-]{1,64}$': 'must be 1 to 64 lowercase letters, digits, _ or -',
  '^[A-Za-z_][A-Za-z0-9_$]*$': 'must be a column name: letters, digits, _ or $, not starting with a digit',
  '^[A-Za-z_][A-Za-z0-9_$]*(\\.[A-Za-z_][A-Za-z0-9_$]*)?$':
    'must be a table name like events or public.events',
  '^https?://': 'must be an http:// or https:// URL',
  '^(redis|rediss|unix|redis\\+cluster|rediss\\+cluster)://':
    'must be a redis://, rediss:// or unix:// URL, or redis+cluster:// for a Redis Cluster',
  '^[A-Za-z0-9_.:-]{1,64}$': 'must be 1 to 64 letters, digits, _, ., : or -',
  '^[A-Za-z0-9_-]{1,64}$': 'must be 1 to 64 letters, digits, _ or -',
  [CURSOR_TYPE_PATTERN]: `must be one of ${CURSOR_TYPES.join(', ')}`,
  '^[a-z0-9_]{1,63}$': 'must be 1 to 63 lowercase letters, digits or _',
};

/**
 * Fills defaults, coerces strings written for numbers (`port: "${PORT}"`), and checks a
 * value against a schema. Problems are in words a user understands, each with its key path.
 *
 * Unions whose branches are told apart by a literal `kind` (sources, pagination) are
 * resolved by that `kind` before anything else: TypeBox alone fills defaults for a union
 * only when some branch already matches, and reports every branch's errors when none does.
 */
export function validate<T extends TSchema>(
  schema: T,
  input: unknown,
): { value: Static<T>; problems: Problem[] } {
  let value = Value.Default(narrow(schema, input), input);
  value = acceptStrictConversions(Value.Clone(value), Value.Convert(narrow(schema, value), value));
  const problems: Problem[] = [];
  // Against the schema itself, so list constraints a narrowed tuple would drop still apply;
  // describe() resolves union errors by kind the same way.
  for (const error of Value.Errors(schema, value)) {
    problems.push(...describe(error, value, ''));
  }
  return { value: value as Static<T>, problems: dedupe(problems) };
}

function discriminants(union: TUnion): string[] | null {
  const kinds: string[] = [];
  for (const branch of union.anyOf) {
    const kind: unknown = KindGuard.IsObject(branch) ? branch.properties['kind'] : undefined;
    if (!KindGuard.IsLiteral(kind) || typeof kind.const !== 'string') return null;
    kinds.push(kind.const);
  }
  return kinds;
}

function branchOf(union: TUnion, value: unknown): TSchema | undefined {
  const kinds = discriminants(union);
  if (!kinds || !isPlainObject(value)) return undefined;
  const index = kinds.indexOf(value['kind'] as string);
  return index < 0 ? undefined : union.anyOf[index];
}

function containsUnion(schema: TSchema): boolean {
  if (KindGuard.IsUnion(schema)) return true;
  if (KindGuard.IsObject(schema)) return Object.values(schema.properties).some(containsUnion);
  if (KindGuard.IsArray(schema)) return containsUnion(schema.items);
  return false;
}

/** The schema with every discriminated union replaced by the branch the value's `kind` selects. */
function narrow(schema: TSchema, value: unknown): TSchema {
  if (KindGuard.IsUnion(schema)) {
    const branch = branchOf(schema, value);
    return branch ? narrow(branch, value) : schema;
  }
  if (KindGuard.IsObject(schema) && isPlainObject(value)) {
    let changed = false;
    const properties: Record<string, TSchema> = {};
    for (const [key, property] of Object.entries(schema.properties)) {
      const narrowed = narrow(property, value[key]);
      properties[key] = narrowed;
      changed ||= narrowed !== property;
    }
    return changed ? { ...schema, properties } : schema;
  }
  if (KindGuard.IsArray(schema) && Array.isArray(value) && value.length > 0 && containsUnion(schema.items)) {
    // A tuple of per-item schemas, so each list item gets the branch its own `kind` selects.
    return Type.Tuple(value.map((item) => narrow(schema.items, item)));
  }
  return schema;
}

/**
 * Keeps only the conversions a user means: a string that spells a number or boolean
 * (`"3001"`, `"true"`) where one is expected, and a number where a string is expected
 * (`name: 2024`). TypeBox's Convert also truncates `2.5` to 2 for integers, turns `true`
 * into 1 and wraps a scalar in a list; those would hide mistakes, so the original is kept
 * and reported.
 */
function acceptStrictConversions(before: unknown, after: unknown): unknown {
  if (Object.is(before, after)) return after;
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    return after.map((item: unknown, index) => acceptStrictConversions(before[index], item));
  }
  if (isPlainObject(before) && isPlainObject(after)) {
    for (const key of Object.keys(after)) after[key] = acceptStrictConversions(before[key], after[key]);
    return after;
  }
  const fromText = typeof before === 'string' && (typeof after === 'number' || typeof after === 'boolean');
  const toText = typeof before === 'number' && typeof after === 'string';
  return (fromText || toText) && String(after) === String(before) ? after : before;
}

/** A value as it is shown in a problem: secrets in URLs hidden, long text cut. */
export function show(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') {
    const text = redactUrl(value);
    return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
  }
  return String(value);
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** The closest known key within two edits, to suggest for a misspelt one. */
function closest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] as number;
}

function duplicates(items: unknown[]): string {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const item of items) {
    const key = JSON.stringify(item);
    if (seen.has(key)) repeated.add(show(item));
    seen.add(key);
  }
  return [...repeated].join(', ');
}

/** One TypeBox error as problems in words (a union error may expand to its branch's errors). */
function describe(error: ValueError, root: unknown, prefix: string): Problem[] {
  const pointer = prefix + error.path;
  const path = keyPathOfPointer(pointer, root);
  const { schema, value } = error;
  const got = ` (got ${show(value)})`;
  const at = (message: string, where: KeyPath = path): Problem[] => [{ path: where, message }];
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return at('is required');
    case ValueErrorType.ObjectAdditionalProperties: {
      const key = String(path[path.length - 1]);
      const suggestion = closest(key, KindGuard.IsObject(schema) ? Object.keys(schema.properties) : []);
      const hint = suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`;
      return at(`unknown key "${key}"${hint}`, path.slice(0, -1));
    }
    case ValueErrorType.Object:
      return at(`must be a mapping of keys to values${got}`);
    case ValueErrorType.Array:
      return at(`must be a list${got}`);
    case ValueErrorType.String:
      return at(`must be text${got}`);
    case ValueErrorType.Number:
      return at(`must be a number${got}`);
    case ValueErrorType.Integer:
      return at(`must be a whole number${got}`);
    case ValueErrorType.Boolean:
      return at(`must be true or false${got}`);
    case ValueErrorType.Literal:
      return at(`must be ${show(schema['const'])}${got}`);
    case ValueErrorType.StringPattern: {
      const pattern = String(schema['pattern']);
      return at(`${PATTERN_HINTS[pattern] ?? `must match the pattern ${pattern}`}${got}`);
    }
    case ValueErrorType.StringMinLength:
      return at(
        schema['minLength'] === 1
          ? 'must not be empty'
          : `must be at least ${schema['minLength']} characters`,
      );
    case ValueErrorType.StringMaxLength:
      return at(`must be at most ${schema['maxLength']} characters long`);
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return at(`must be at least ${schema['minimum']}${got}`);
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return at(`must be at most ${schema['maximum']}${got}`);
    case ValueErrorType.IntegerExclusiveMinimum:
    case ValueErrorType.NumberExclusiveMinimum:
      return at(`must be greater than ${schema['exclusiveMinimum']}${got}`);
    case ValueErrorType.IntegerExclusiveMaximum:
    case ValueErrorType.NumberExclusiveMaximum:
      return at(`must be less than ${schema['exclusiveMaximum']}${got}`);
    case ValueErrorType.ArrayMinItems:
      return at(`must list at least ${plural(Number(schema['minItems']), 'entry', 'entries')}`);
    case ValueErrorType.ArrayMaxItems:
      return at(`must list at most ${plural(Number(schema['maxItems']), 'entry', 'entries')}`);
    case ValueErrorType.ArrayUniqueItems:
      return at(`lists ${duplicates(value as unknown[])} more than once`);
    case ValueErrorType.Union:
      return describeUnion(error, root, pointer, path);
    default:
      return at(error.message.charAt(0).toLowerCase() + error.message.slice(1));
  }
}

function describeUnion(error: ValueError, root: unknown, pointer: string, path: KeyPath): Problem[] {
  const union = error.schema as TUnion;
  const kinds = discriminants(union);
  if (!kinds) return [{ path, message: `does not match any of the allowed forms` }];
  const choices = `one of ${kinds.join(', ')}`;
  const { value } = error;
  if (!isPlainObject(value)) return [{ path, message: `must be a mapping with a kind (${choices})` }];
  const branch = branchOf(union, value);
  if (!branch) {
    if (value['kind'] === undefined)
      return [{ path: [...path, 'kind'], message: `is required (${choices})` }];
    return [{ path: [...path, 'kind'], message: `must be ${choices} (got ${show(value['kind'])})` }];
  }
  return [...Value.Errors(branch, value)].flatMap((inner) => describe(inner, root, pointer));
}

/** A missing key is reported once, as missing, not also as having the wrong type. */
function dedupe(problems: Problem[]): Problem[] {
  const required = new Set(
    problems.filter((p) => p.message === 'is required').map((p) => JSON.stringify(p.path)),
  );
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const where = JSON.stringify(problem.path);
    if (required.has(where) && problem.message !== 'is required') return false;
    const key = `${where} ${problem.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
