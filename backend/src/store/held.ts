import type { DatasetSpec } from '../config/dataset';
import type { SourceRecord } from '../sources/types';
import { encodeValue } from './groups';

/**
 * A record as the stores hold it: exactly what its contributions follow from, and the
 * upstream cursor of the version held (for listing what is held, see Store.scanRecords).
 */
export interface Held {
  time: number;
  /** Dimension values as group keys spell them (encodeValue). */
  dims: string[];
  /** null for a NULL or non-finite value. */
  metrics: (number | null)[];
  distinct: (string | null)[];
  cursor: string;
}

export function holdRecord(record: SourceRecord): Held {
  return {
    time: record.time,
    dims: record.dims.map(encodeValue),
    metrics: record.metrics.map((v) => (v === null || !Number.isFinite(v) ? null : v)),
    distinct: record.distinct.map((v) => v ?? null),
    cursor: record.cursor,
  };
}

const SEP = '\x1f';
const NULL_VALUE = '\x00';
/** A cursor of decimal digits (epoch microseconds, an integer column) is kept in base 36, after this mark. */
const DECIMAL_CURSOR = '#';
const DECIMAL = /^[1-9][0-9]{0,39}$/;

/**
 * The stored form of a held record; equal forms mean an unchanged record. Short, since a
 * store holds one per record: the time in base 36, then dimension values, metrics ('' for
 * null), distinct values (NUL for null) and the cursor, separated by the unit separator that
 * dimension values never hold. A record this cannot spell exactly (a distinct value holding
 * the separator, say) is stored as JSON instead, which the first character tells apart.
 */
export function encodeHeld(held: Held): string {
  const plain =
    Number.isSafeInteger(held.time) &&
    held.distinct.every((v) => v === null || (v !== NULL_VALUE && !v.includes(SEP))) &&
    (DECIMAL.test(held.cursor) || !held.cursor.startsWith(DECIMAL_CURSOR));
  if (!plain) return JSON.stringify([held.time, held.dims, held.metrics, held.distinct, held.cursor]);
  const cursor = DECIMAL.test(held.cursor) ? DECIMAL_CURSOR + BigInt(held.cursor).toString(36) : held.cursor;
  return [
    held.time.toString(36),
    ...held.dims,
    ...held.metrics.map((v) => (v === null ? '' : String(v))),
    ...held.distinct.map((v) => v ?? NULL_VALUE),
    cursor,
  ].join(SEP);
}

/** What a held record contributes to the rollups: everything but its cursor. */
export type Contribution = Omit<Held, 'cursor'>;

/**
 * Decodes encodeHeld's form of a record of a dataset with these many dimensions, metrics and
 * distinct fields, leaving out the cursor, which the rules never read (and which costs the
 * most to decode: a base-36 BigInt).
 */
export function decodeContribution(text: string, D: number, M: number, K: number): Contribution {
  return text.startsWith('[') ? decodeHeld(text, D, M, K) : contributionOf(text.split(SEP), D, M, K);
}

/** Decodes encodeHeld's form of a record, its cursor too. */
export function decodeHeld(text: string, D: number, M: number, K: number): Held {
  if (text.startsWith('[')) {
    const [time, dims, metrics, distinct, cursor] = JSON.parse(text) as [
      number,
      string[],
      (number | null)[],
      (string | null)[],
      string,
    ];
    return { time, dims, metrics, distinct, cursor };
  }
  const parts = text.split(SEP);
  // The cursor comes last and may hold the separator itself.
  const raw = parts.slice(1 + D + M + K).join(SEP);
  return {
    ...contributionOf(parts, D, M, K),
    cursor: raw.startsWith(DECIMAL_CURSOR) ? fromBase36(raw.slice(1)) : raw,
  };
}

/** The fields of a plain stored form (split at the separator) but its cursor. */
function contributionOf(parts: string[], D: number, M: number, K: number): Contribution {
  const metrics: (number | null)[] = new Array(M);
  for (let m = 0; m < M; m++) {
    const v = parts[1 + D + m]!;
    metrics[m] = v === '' ? null : Number(v);
  }
  const distinct: (string | null)[] = new Array(K);
  for (let k = 0; k < K; k++) {
    const v = parts[1 + D + M + k]!;
    distinct[k] = v === NULL_VALUE ? null : v;
  }
  return { time: parseInt(parts[0]!, 36), dims: parts.slice(1, 1 + D), metrics, distinct };
}

/** A base-36 string of a non-negative integer, back to decimal, exactly (BigInt has no base-36 parser). */
function fromBase36(text: string): string {
  let n = 0n;
  for (const ch of text) n = n * 36n + BigInt(parseInt(ch, 36));
  return n.toString();
}

/** The upstream cursor of a stored record of a dataset. */
export function heldCursor(form: string, spec: DatasetSpec): string {
  return decodeHeld(form, spec.dimensions.length, spec.metrics.length, spec.distinct.length).cursor;
}
