/**
 * Dimension values of a group, joined into one string that names the group in keys.
 * Unit separator between values; NUL stands for a null value, so `null` and `''` stay
 * different groups, as in SQL.
 */
const SEP = '\x1f';
const NULL_VALUE = '\x00';

export function encodeValue(value: string | null): string {
  return value === null ? NULL_VALUE : value.replaceAll(SEP, ' ');
}

export function encodeGroup(values: readonly (string | null)[]): string {
  return values.map(encodeValue).join(SEP);
}

export function decodeGroup(key: string, size: number): (string | null)[] {
  if (size === 0) return [];
  return key.split(SEP).map((v) => (v === NULL_VALUE ? null : v));
}
