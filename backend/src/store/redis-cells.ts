import { CELL } from '../config/dataset';

/**
 * How a rollup cell is stored in Redis: a block of cells is a hash, slot → cell, holding only
 * the cells that hold records (most cells of a fine tier are empty: a group seen a few times
 * an hour), so that an empty cell costs nothing. A cell is short text: its doubles in the
 * shortest form that reads back exactly (`String(number)`), comma-separated, with what is
 * implied left out: a metric's non-null count when it equals the cell's count, its min when
 * it equals its sum (a cell of one record), its max when it equals its min, and trailing
 * empties. A cell of one record with two metrics is `1,12.5,,,,340`: small enough for Redis
 * to keep a block as a listpack (`hash-max-listpack-value`, 64 bytes by default).
 */
export function encodeCell(value: Float64Array, M: number): string {
  const count = value[CELL.count]!;
  const parts: string[] = [String(count)];
  for (let m = 0; m < M; m++) {
    const sum = value[CELL.sum(m)]!;
    const nn = value[CELL.nonNull(m)]!;
    const min = value[CELL.min(m)]!;
    const max = value[CELL.max(m)]!;
    parts.push(
      String(sum),
      nn === count ? '' : String(nn),
      min === sum ? '' : String(min),
      max === min ? '' : String(max),
    );
  }
  let end = parts.length;
  while (end > 1 && parts[end - 1] === '') end--;
  return parts.slice(0, end).join(',');
}

/**
 * Decodes encodeCell's text, as the bytes `start`..`end` of `bytes` (a reply read as a Buffer),
 * into `into` at index `at` (F doubles). A panel decodes tens of thousands of cells per read:
 * this walks the bytes once, making no strings (see readNumber).
 */
export function decodeCellBytes(
  bytes: Buffer,
  start: number,
  end: number,
  M: number,
  into: Float64Array,
  at: number,
): void {
  const n = 1 + 4 * M;
  let p = start;
  for (let i = 0; i < n; i++) {
    let q = p;
    while (q < end && bytes[q] !== COMMA) q++;
    // Past the text (trailing empties were left out) or between two commas: implied.
    given[i] = q > p;
    if (q > p) parts[i] = readNumber(bytes, p, q);
    p = q + 1;
  }
  const part = (i: number, otherwise: number) => (given[i] ? parts[i]! : otherwise);
  const count = part(0, 0);
  into[at + CELL.count] = count;
  for (let m = 0; m < M; m++) {
    const base = 1 + 4 * m;
    const sum = part(base, 0);
    const min = part(base + 2, sum);
    into[at + CELL.sum(m)] = sum;
    into[at + CELL.nonNull(m)] = part(base + 1, count);
    into[at + CELL.min(m)] = min;
    into[at + CELL.max(m)] = part(base + 3, min);
  }
}

const COMMA = 44;
const MINUS = 45;
const DOT = 46;
const ZERO = 48;
/** The numbers of the cell being decoded, and whether each was written (decoding is synchronous: one pair serves all). */
const parts: number[] = [];
const given: boolean[] = [];
/**
 * 10^0 … 10^22, each exact in a double: an integer below 2^53 divided by one of them is the
 * correctly rounded value of the decimal, the same double Number() reads (Clinger's fast path).
 */
const POWERS = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));
/** Significant digits that always make an integer below 2^53. */
const EXACT_DIGITS = 15;

/**
 * The number written (by String(number)) in bytes `start`..`end`. Plain decimals of up to 15
 * significant digits, which is what cells hold, are read digit by digit; anything else
 * (an exponent, more digits) goes to Number(), so the result is always Number()'s.
 */
export function readNumber(bytes: Buffer, start: number, end: number): number {
  let i = start;
  const negative = bytes[i] === MINUS;
  if (negative) i++;
  let mantissa = 0;
  let seen = 0;
  let digits = 0;
  let decimals = -1;
  for (; i < end; i++) {
    const c = bytes[i]!;
    if (c === DOT && decimals < 0) {
      decimals = 0;
      continue;
    }
    const d = c - ZERO;
    if (d < 0 || d > 9) return Number(bytes.toString('latin1', start, end));
    mantissa = mantissa * 10 + d;
    seen++;
    if (mantissa > 0) digits++;
    if (decimals >= 0) decimals++;
  }
  if (seen === 0 || digits > EXACT_DIGITS || decimals >= POWERS.length)
    return Number(bytes.toString('latin1', start, end));
  const value = decimals > 0 ? mantissa / POWERS[decimals]! : mantissa;
  return negative ? -value : value;
}
