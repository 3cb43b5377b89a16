import { KindGuard, Type, type TSchema } from '@sinclair/typebox';
import { formatKeyPath } from '../../src/config/keypath';
import { ConfigSchema, SourceSchema } from '../../src/config/schema';
import { PATTERN_HINTS, validate } from '../../src/config/validate';

function patterns(schema: TSchema, out = new Set<string>()): Set<string> {
  if (typeof schema['pattern'] === 'string') out.add(schema['pattern']);
  if (KindGuard.IsObject(schema)) Object.values(schema.properties).forEach((p) => patterns(p, out));
  if (KindGuard.IsArray(schema)) patterns(schema.items, out);
  if (KindGuard.IsUnion(schema)) schema.anyOf.forEach((b) => patterns(b, out));
  if (KindGuard.IsRecord(schema)) Object.values(schema.patternProperties).forEach((p) => patterns(p, out));
  return out;
}

describe('PATTERN_HINTS', () => {
  it('explains every pattern of the config schema in words', () => {
    const missing = [...patterns(ConfigSchema)].filter((pattern) => !(pattern in PATTERN_HINTS));
    expect(missing).toEqual([]);
  });
});

describe('validate', () => {
  it('reports the errors of the branch a kind selects, even where it cannot narrow the schema first', () => {
    const schema = Type.Array(SourceSchema, { uniqueItems: true });
    const { problems } = validate(schema, [{ kind: 'demo', rate: 'fast' }, { kind: 'ftp' }]);
    expect(problems.map((p) => `${formatKeyPath(p.path)}: ${p.message}`)).toEqual([
      '[0].rate: must be a number (got "fast")',
      '[1].kind: must be one of postgres, http, demo (got "ftp")',
    ]);
  });
});
