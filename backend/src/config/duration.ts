const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration as written in the config file: an integer and a unit, e.g. `500ms`, `5s`, `2m`, `1h`, `30d`. */
export const DURATION_PATTERN = '^[0-9]+(ms|s|m|h|d)$';

export function parseDuration(text: string): number {
  const match = /^([0-9]+)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) {
    throw new Error(`"${text}" is not a duration (use a number and a unit: 500ms, 5s, 2m, 1h, 30d)`);
  }
  return Number(match[1]) * UNITS[match[2] as string]!;
}

/** The shortest exact spelling of a duration in milliseconds, e.g. 60000 → `1m`. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNITS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** Age in words for people: `42 s`, `7 min`, `3 h`, `2 d`. */
export function describeAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s`;
  const min = Math.round(s / 60);
  if (min < 90) return `${min} min`;
  const h = Math.round(min / 60);
  if (h < 36) return `${h} h`;
  return `${Math.round(h / 24)} d`;
}
