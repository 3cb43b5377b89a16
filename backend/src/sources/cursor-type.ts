import type { CursorType } from '../config/schema';
import { compareDecimals, isDecimal } from './order';

/*
 * Cursor values by type, so that they are compared by value, never as text: `timestamp` is
 * RFC 3339 date-time text, `epoch_*` a count of seconds, milliseconds, microseconds or
 * nanoseconds since 1970, `number` any other number (a sequence or version, which no
 * duration can move back).
 */

/** Decimal digits of a second each epoch unit has. */
const EPOCH_DIGITS: Readonly<Record<string, number>> = { epoch_s: 0, epoch_ms: 3, epoch_us: 6, epoch_ns: 9 };

/**
 * RFC 3339 date-time: any number of fraction digits (Go's RFC3339Nano trims them, down to
 * none), `Z` or a numeric offset; a space for the `T` as the RFC's note allows.
 */
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|([+-])(\d{2}):(\d{2}))$/;

interface Timestamp {
  /** Whole milliseconds since 1970, UTC. */
  ms: number;
  /** Fraction digits beyond the millisecond, as written. */
  subMs: string;
  /** Fraction digits as written (0 for none). */
  digits: number;
  /** Offset from UTC in minutes, and as written. */
  offsetMinutes: number;
  offset: string;
}

function parseTimestamp(text: string): Timestamp | null {
  const match = RFC3339.exec(text);
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as number[];
  const fraction = match[7] ?? '';
  const sign = match[9] === '-' ? -1 : 1;
  const offsetHours = Number(match[10] ?? 0);
  const offsetMins = Number(match[11] ?? 0);
  const local = Date.UTC(year!, month! - 1, day!, hour!, minute!, second!);
  const valid =
    new Date(Date.UTC(year!, month! - 1, day!)).getUTCDate() === day &&
    month! >= 1 &&
    month! <= 12 &&
    hour! <= 23 &&
    minute! <= 59 &&
    second! <= 60 &&
    offsetHours <= 23 &&
    offsetMins <= 59;
  if (!valid || Number.isNaN(local)) return null;
  const offsetMinutes = sign * (offsetHours * 60 + offsetMins);
  return {
    ms: local - offsetMinutes * 60_000 + Number(fraction.slice(0, 3).padEnd(3, '0')),
    subMs: fraction.slice(3),
    digits: fraction.length,
    offsetMinutes,
    offset: match[8]!,
  };
}

/** Epoch milliseconds of RFC 3339 text, rounded down; null when it is not RFC 3339. */
export function timestampMs(text: string): number | null {
  return parseTimestamp(text)?.ms ?? null;
}

/** The type a first cursor value shows: a timestamp or a number; null for anything else. */
export function inferCursorType(text: string): 'timestamp' | 'number' | null {
  if (isDecimal(text)) return 'number';
  return parseTimestamp(text) ? 'timestamp' : null;
}

/** Whether a duration (sync.lag, sync.lookback) can be applied to cursors of this type. */
export function isTimeCursor(type: CursorType): boolean {
  return type !== 'number';
}

/**
 * A cursor as an exact decimal in its own unit (seconds for timestamps), or null when the
 * text is not of the type. Nanoseconds and beyond stay exact: nothing passes through a double.
 */
export function cursorValue(type: CursorType, text: string): string | null {
  if (type !== 'timestamp') return isDecimal(text) ? text : null;
  const parsed = parseTimestamp(text);
  if (!parsed) return null;
  return decimal(
    BigInt(parsed.ms) * 10n ** BigInt(parsed.subMs.length) + BigInt(parsed.subMs || '0'),
    3 + parsed.subMs.length,
  );
}

/** Order of two cursors of a type; both must be of it. */
export function compareCursorValues(type: CursorType, a: string, b: string): number {
  const x = cursorValue(type, a);
  const y = cursorValue(type, b);
  if (x === null || y === null) throw new Error(`cannot compare "${a}" and "${b}" as ${type} cursors`);
  return compareDecimals(x, y);
}

/** An instant in epoch milliseconds as an exact decimal in a time cursor type's unit. */
export function instantValue(type: CursorType, ms: number): string {
  const digits = type === 'timestamp' ? 0 : (EPOCH_DIGITS[type] ?? 0);
  return digits >= 3 ? decimal(BigInt(ms) * 10n ** BigInt(digits - 3), 0) : decimal(BigInt(ms), 3 - digits);
}

/**
 * The cursor `ms` milliseconds before `text`, spelled the way `text` is (same offset, no more
 * fraction digits), rounded down: reading from a little earlier only re-reads records.
 */
export function rewindCursor(type: CursorType, text: string, ms: number): string {
  if (type === 'timestamp') {
    const parsed = parseTimestamp(text);
    if (!parsed) throw new Error(`"${text}" is not an RFC 3339 timestamp`);
    const step = 10 ** Math.max(0, 3 - parsed.digits);
    const at = Math.floor((parsed.ms - ms) / step) * step;
    const local = new Date(at + parsed.offsetMinutes * 60_000).toISOString();
    const fraction = (local.slice(20, 23) + parsed.subMs).slice(0, parsed.digits);
    return `${local.slice(0, 19)}${fraction ? `.${fraction}` : ''}${parsed.offset}`;
  }
  const digits = EPOCH_DIGITS[type];
  if (digits === undefined) throw new Error(`a ${type} cursor cannot be moved back by a duration`);
  const value = cursorValue(type, text);
  if (value === null) throw new Error(`"${text}" is not a number`);
  // Whole units, rounded down, so an API that takes integers gets one.
  const [whole = '0'] = value.split('.');
  const back = BigInt(ms) * 10n ** BigInt(Math.max(0, digits - 3));
  const unitsBack =
    digits >= 3 ? back : (BigInt(ms) + 10n ** BigInt(3 - digits) - 1n) / 10n ** BigInt(3 - digits);
  const floor = value.startsWith('-') && value.includes('.') ? BigInt(whole) - 1n : BigInt(whole);
  return String(floor - unitsBack);
}

/** `units / 10^scale` as decimal text. */
function decimal(units: bigint, scale: number): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}
