/**
 * InfluxDB line protocol, as Grafana Live's push API reads it: `measurement field=value
 * timestamp`. Measurement names escape commas and spaces; string values are quoted.
 */
export function escapeMeasurement(name: string): string {
  return name.replace(/[, \\]/g, (c) => `\\${c}`);
}

function escapeKey(name: string): string {
  return name.replace(/[,= \\]/g, (c) => `\\${c}`);
}

export type FieldValue = number | string | boolean | { int: number };

function formatValue(value: FieldValue): string {
  if (typeof value === 'object') return `${Math.trunc(value.int)}i`;
  if (typeof value === 'string') return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return Number.isFinite(value) ? String(value) : '0';
}

/** One line; `timeMs` becomes nanoseconds, as Grafana expects by default. */
export function line(measurement: string, fields: Record<string, FieldValue>, timeMs: number): string {
  const body = Object.entries(fields)
    .map(([k, v]) => `${escapeKey(k)}=${formatValue(v)}`)
    .join(',');
  return `${escapeMeasurement(measurement)} ${body} ${BigInt(Math.trunc(timeMs)) * 1_000_000n}`;
}
