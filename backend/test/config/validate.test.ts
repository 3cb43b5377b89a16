import { KindGuard, type TSchema } from '@sinclair/typebox';
import { ConfigSchema } from '../../src/config/schema';
import { PATTERN_HINTS } from '../../src/config/validate';

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
