import { type DataFrame, type Field, FieldType } from '@grafana/data';
import type { Span } from './range';

/**
 * Folds the answer for a touched span into the frames a panel shows.
 *
 * A series is a frame, known by its value fields' names and labels (a table-format answer is one
 * frame without labels). Within `span` the touched answer is the truth: a series' rows there are
 * replaced by the answer's rows, a series the answer does not have loses its rows there (its
 * records were deleted), and a series only the answer has appears. Rows outside `span` stay as
 * they were. Rows before `keepFrom` (the panel's window start, which moves while streaming) are
 * dropped. Rows stay sorted by time; rows at the same time keep their order (a table's groups).
 *
 * Frames are new objects: the inputs are not modified. Series left without rows are dropped,
 * but one empty frame stays when nothing is left, so a panel says "No data" the way it does
 * for a first answer with nothing in it.
 */
export function mergeTouched(
  current: DataFrame[],
  touched: DataFrame[],
  span: Span,
  keepFrom = Number.NEGATIVE_INFINITY,
): DataFrame[] {
  const inSpan = (t: number) => t >= span.from && t < span.to;
  const touchedByKey = new Map<string, DataFrame>();
  for (const frame of touched) {
    if (!touchedByKey.has(seriesKey(frame))) touchedByKey.set(seriesKey(frame), frame);
  }
  // Freshness lives in every frame's meta: the touched answer's is the newer one.
  const freshMeta = touched[0]?.meta;

  const out: DataFrame[] = [];
  const seen = new Set<string>();
  for (const frame of current) {
    const key = seriesKey(frame);
    seen.add(key);
    const answer = touchedByKey.get(key);
    const kept = pickRows(frame, (t) => t >= keepFrom && !inSpan(t));
    const added = answer ? pickRows(answer, (t) => t >= keepFrom && inSpan(t)) : [];
    out.push(combine(frame, answer, kept, added, answer?.meta ?? freshMeta ?? frame.meta));
  }
  for (const [key, answer] of touchedByKey) {
    if (seen.has(key)) continue;
    const added = pickRows(answer, (t) => t >= keepFrom && inSpan(t));
    out.push(combine(answer, answer, [], added, answer.meta));
  }

  const withRows = out.filter((frame) => frame.length > 0);
  if (withRows.length > 0) return withRows;
  const shape = out[0];
  return shape ? [shape] : [];
}

/** A series' identity: its value fields, by name and labels (label order does not matter). */
export function seriesKey(frame: DataFrame): string {
  return JSON.stringify(
    frame.fields
      .filter((field) => field.type !== FieldType.time)
      .map((field) => [
        field.name,
        Object.entries(field.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      ]),
  );
}

function timeField(frame: DataFrame): Field | undefined {
  return frame.fields.find((field) => field.type === FieldType.time);
}

interface Row {
  from: 'current' | 'touched';
  index: number;
  time: number;
}

function pickRows(frame: DataFrame, keep: (time: number) => boolean): Row[] {
  const time = timeField(frame);
  if (!time) return [];
  const rows: Row[] = [];
  for (let index = 0; index < frame.length; index++) {
    const t = Number(time.values[index]);
    if (keep(t)) rows.push({ from: 'current', index, time: t });
  }
  return rows;
}

/** The frame `base` with `kept` rows of itself and `added` rows of `answer`, sorted by time. */
function combine(
  base: DataFrame,
  answer: DataFrame | undefined,
  kept: Row[],
  added: Row[],
  meta: DataFrame['meta'],
): DataFrame {
  const rows = [...kept, ...added.map((row) => ({ ...row, from: 'touched' as const }))];
  // Array.prototype.sort is stable: rows at the same time keep their relative order.
  rows.sort((a, b) => a.time - b.time);
  const fields = base.fields.map((field, i) => {
    const source = answer && answer !== base ? matchField(answer, field, i) : field;
    const values = rows.map((row) =>
      row.from === 'current' ? field.values[row.index] : (source?.values[row.index] ?? null),
    );
    // `state` holds Grafana's display caches (names, reducer results) for the old values.
    const { state: _state, ...rest } = field;
    return { ...rest, values };
  });
  const frame: DataFrame = { ...base, fields, length: rows.length };
  if (meta) frame.meta = meta;
  return frame;
}

function matchField(frame: DataFrame, field: Field, index: number): Field | undefined {
  const same = (f: Field) => f.name === field.name && f.type === field.type;
  const candidate = frame.fields[index];
  return candidate && same(candidate) ? candidate : frame.fields.find(same);
}
