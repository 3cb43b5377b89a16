/** A parsed dot path such as `meta.geo.country`; the empty path is the value itself. */
export type JsonPath = readonly string[];

export function parsePath(path: string): JsonPath {
  return path === '' ? [] : path.split('.');
}

/** The value at a path, or undefined as soon as a step is missing or not an object. */
export function valueAt(value: unknown, path: JsonPath): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    if (!Object.prototype.hasOwnProperty.call(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}
