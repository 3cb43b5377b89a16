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

/** Decodes encodeCell's text into `into` at index `at` (F doubles). */
export function decodeCell(text: string, M: number, into: Float64Array, at: number): void {
  const parts = text.split(',');
  const num = (i: number, otherwise: number) => {
    const p = parts[i];
    return p === undefined || p === '' ? otherwise : Number(p);
  };
  const count = num(0, 0);
  into[at + CELL.count] = count;
  for (let m = 0; m < M; m++) {
    const base = 1 + 4 * m;
    const sum = num(base, 0);
    const min = num(base + 2, sum);
    into[at + CELL.sum(m)] = sum;
    into[at + CELL.nonNull(m)] = num(base + 1, count);
    into[at + CELL.min(m)] = min;
    into[at + CELL.max(m)] = num(base + 3, min);
  }
}
