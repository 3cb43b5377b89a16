import type { Position } from './types';

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;
const INTEGER = /^-?\d+$/;

export function isDecimal(text: string): boolean {
  return DECIMAL.test(text);
}

function scaled(match: RegExpExecArray, scale: number): bigint {
  const digits = BigInt((match[2] ?? '0') + (match[3] ?? '').padEnd(scale, '0'));
  return match[1] === '-' ? -digits : digits;
}

/**
 * Exact order of two decimal strings. Cursors and ids arrive as text precisely so that
 * microsecond timestamps, bigints and numerics never pass through a lossy double.
 */
export function compareDecimals(a: string, b: string): number {
  const x = DECIMAL.exec(a);
  const y = DECIMAL.exec(b);
  if (!x || !y) throw new Error(`cannot compare "${a}" and "${b}" as numbers`);
  const scale = Math.max(x[3]?.length ?? 0, y[3]?.length ?? 0);
  const diff = scaled(x, scale) - scaled(y, scale);
  return diff < 0n ? -1 : diff > 0n ? 1 : 0;
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Numbers compare numerically (so "9" < "10"); anything else, e.g. ISO timestamps, as text. */
export function compareCursors(a: string, b: string): number {
  return isDecimal(a) && isDecimal(b) ? compareDecimals(a, b) : compareStrings(a, b);
}

/** Integer ids compare numerically, all other ids (UUIDs, slugs) as text. */
export function compareIds(a: string, b: string): number {
  return INTEGER.test(a) && INTEGER.test(b) ? compareDecimals(a, b) : compareStrings(a, b);
}

export function comparePositions(
  a: Position,
  b: Position,
  cursors: (a: string, b: string) => number = compareCursors,
  ids: (a: string, b: string) => number = compareIds,
): number {
  return cursors(a.cursor, b.cursor) || ids(a.id, b.id);
}
