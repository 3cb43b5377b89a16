/**
 * InfluxDB line protocol, parsed as Grafana Live's HTTP push endpoint parses it, and converted
 * to frames the way its Telegraf converter does in "wide" mode with float64 numbers
 * (pkg/services/live/telemetry/telegraf): one frame per measurement and timestamp, named after
 * the measurement; a `time` field, then one nullable field per line-protocol field sorted by
 * key, every number as float64, the tags as labels on each field.
 */

export type FieldValue = number | string | boolean;

export interface Metric {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, FieldValue>;
  /** Nanoseconds since the epoch. */
  timeNs: bigint;
}

export class LineProtocolError extends Error {
  override readonly name = 'LineProtocolError';
}

/** Parses a body of lines; a blank line or a `#` comment is skipped; a missing timestamp is now. */
export function parseLines(body: string, nowNs: bigint = BigInt(Date.now()) * 1_000_000n): Metric[] {
  const metrics: Metric[] = [];
  body.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    try {
      metrics.push(parseLine(line, nowNs));
    } catch (err) {
      throw new LineProtocolError(`line ${index + 1}: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  return metrics;
}

function parseLine(line: string, nowNs: bigint): Metric {
  let i = 0;
  // Reads up to an unescaped stop character; escapes drop their backslash.
  const readUntil = (stops: string, escapable: string): string => {
    let out = '';
    while (i < line.length && !stops.includes(line[i]!)) {
      if (line[i] === '\\' && i + 1 < line.length && escapable.includes(line[i + 1]!)) {
        out += line[i + 1];
        i += 2;
      } else {
        out += line[i++];
      }
    }
    return out;
  };

  const measurement = readUntil(', ', ', \\');
  if (!measurement) throw new Error('missing measurement');
  const tags: Record<string, string> = {};
  while (line[i] === ',') {
    i++;
    const key = readUntil('=', ',= \\');
    if (line[i] !== '=') throw new Error(`tag ${key} has no value`);
    i++;
    const value = readUntil(', ', ',= \\');
    tags[key] = value;
  }
  if (line[i] !== ' ') throw new Error('missing fields');
  while (line[i] === ' ') i++;

  const fields: Record<string, FieldValue> = {};
  for (;;) {
    const key = readUntil('=', ',= \\');
    if (line[i] !== '=' || !key) throw new Error('malformed field');
    i++;
    if (line[i] === '"') {
      i++;
      let text = '';
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) {
          text += line[i + 1];
          i += 2;
        } else {
          text += line[i++];
        }
      }
      if (line[i] !== '"') throw new Error(`unterminated string in field ${key}`);
      i++;
      fields[key] = text;
    } else {
      const token = readUntil(', ', '');
      fields[key] = parseScalar(key, token);
    }
    if (line[i] === ',') {
      i++;
      continue;
    }
    break;
  }
  while (line[i] === ' ') i++;
  const rest = line.slice(i).trim();
  let timeNs = nowNs;
  if (rest !== '') {
    if (!/^-?\d+$/.test(rest)) throw new Error(`bad timestamp "${rest}"`);
    timeNs = BigInt(rest);
  }
  return { measurement, tags, fields, timeNs };
}

function parseScalar(key: string, token: string): FieldValue {
  if (/^-?\d+i$/.test(token) || /^\d+u$/.test(token)) return Number(token.slice(0, -1));
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(token)) return Number(token);
  if (['t', 'T', 'true', 'True', 'TRUE'].includes(token)) return true;
  if (['f', 'F', 'false', 'False', 'FALSE'].includes(token)) return false;
  throw new Error(`field ${key} has an invalid value "${token}"`);
}

/** Grafana's DataFrame JSON (data.FrameToJSON with schema and data). */
export interface FrameJson {
  schema: {
    name: string;
    fields: Array<{
      name: string;
      type: 'time' | 'number' | 'string' | 'boolean';
      typeInfo: { frame: string; nullable?: boolean };
      labels?: Record<string, string>;
    }>;
  };
  data: { values: unknown[][]; nanos?: Array<number[] | null> };
}

/** The frames a push becomes, keyed by measurement (the channel path), in the order of the lines. */
export function toFrames(metrics: Metric[]): Array<{ key: string; frame: FrameJson }> {
  const frames: Array<{ key: string; frame: FrameJson; id: string }> = [];
  for (const metric of metrics) {
    const id = `${metric.measurement}_${metric.timeNs}`;
    let entry = frames.find((f) => f.id === id);
    if (!entry) {
      const ms = Number(metric.timeNs / 1_000_000n);
      const subMs = Number(metric.timeNs % 1_000_000n);
      entry = {
        id,
        key: metric.measurement,
        frame: {
          schema: {
            name: metric.measurement,
            fields: [{ name: 'time', type: 'time', typeInfo: { frame: 'time.Time' } }],
          },
          data: { values: [[ms]], ...(subMs ? { nanos: [[subMs]] } : {}) },
        },
      };
      frames.push(entry);
    }
    const labels = Object.keys(metric.tags).length ? { labels: { ...metric.tags } } : {};
    for (const key of Object.keys(metric.fields).sort()) {
      const value = metric.fields[key]!;
      const type = typeof value === 'number' ? 'number' : typeof value === 'boolean' ? 'boolean' : 'string';
      const frameType = type === 'number' ? 'float64' : type === 'boolean' ? 'bool' : 'string';
      entry.frame.schema.fields.push({
        name: key,
        type,
        typeInfo: { frame: frameType, nullable: true },
        ...labels,
      });
      entry.frame.data.values.push([value]);
      if (entry.frame.data.nanos) entry.frame.data.nanos.push(null);
    }
  }
  return frames.map(({ key, frame }) => ({ key, frame }));
}
