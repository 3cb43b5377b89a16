import { type RawTimeRange, type TimeRange, dateMath, isDateTime } from '@grafana/data';

/** A half-open time span in epoch ms: `from` inclusive, `to` exclusive. */
export interface Span {
  from: number;
  to: number;
}

export const alignDown = (t: number, stepMs: number): number => Math.floor(t / stepMs) * stepMs;
export const alignUp = (t: number, stepMs: number): number => Math.ceil(t / stepMs) * stepMs;

export const overlaps = (a: Span, b: Span): boolean => a.from < b.to && b.from < a.to;

export const union = (a: Span | undefined, b: Span): Span =>
  a ? { from: Math.min(a.from, b.from), to: Math.max(a.to, b.to) } : b;

/**
 * True when the panel's range ends at the present and so moves with the clock: `now`, or a
 * relative end that has not passed yet (`now/d`, "today"). An absolute end, or one in the past
 * (`now-1h`), shows a fixed window that changes only with late data: a refresh covers it.
 */
export function followsNow(raw: RawTimeRange, timezone: string, now: number): boolean {
  const to = raw.to;
  if (isDateTime(to) || typeof to !== 'string') return false;
  const text = to.trim();
  if (!text.startsWith('now') || !dateMath.isMathString(text)) return false;
  const end = dateMath.toDateTime(text, { roundUp: true, timezone, now });
  return end !== undefined && end.isValid() && end.valueOf() >= now;
}

/**
 * The panel's range as it stands at `now`: its relative ends resolved again, as Grafana does for
 * streaming responses, so the window slides forward while the panel streams.
 */
export function currentWindow(range: TimeRange, timezone: string, now: number): Span {
  const resolve = (raw: RawTimeRange['from'], roundUp: boolean, fallback: number) => {
    const t = dateMath.toDateTime(raw, { roundUp, timezone, now });
    return t !== undefined && t.isValid() ? t.valueOf() : fallback;
  };
  return {
    from: resolve(range.raw.from, false, range.from.valueOf()),
    to: resolve(range.raw.to, true, range.to.valueOf()),
  };
}
