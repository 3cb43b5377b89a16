import type { DatasetSpec } from '../config/dataset';
import type { PostgresSourceConfig } from '../config/schema';
import { SourceError, type SourceRecord } from './types';

/**
 * Session settings of every connection of a CDC source, snapshot and stream alike: a value
 * then has one text form whichever way it arrives (type output functions depend on them), and
 * one function below turns it into a record, so a row read by the snapshot and the same row
 * replayed by the stream land in the same buckets.
 */
export const CDC_SESSION = '-c TimeZone=UTC -c DateStyle=ISO,YMD -c extra_float_digits=1';

/** A row as column name → the column's text form; null for NULL, undefined for a value not sent. */
export type TextRow = Record<string, string | null | undefined>;

const TIMESTAMP =
  /^(\d{4,})-(\d\d)-(\d\d)(?: (\d\d):(\d\d):(\d\d)(?:\.(\d+))?)?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?( BC)?$/;

/** Epoch milliseconds of a date, timestamp or timestamptz in ISO output, rounded down like floor(extract(epoch) * 1000). */
export function epochMsOfText(text: string): number | null {
  const m = TIMESTAMP.exec(text);
  if (!m || m[12]) return null;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, Number((m[7] ?? '').padEnd(3, '0').slice(0, 3)));
  const offsetSeconds = m[8]
    ? (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0))
    : 0;
  return date.getTime() - offsetSeconds * 1000;
}

/** Turns rows in text form into records of the dataset: the one mapping for the snapshot and the stream. */
export class CdcRows {
  /** Every column a record needs, once each: what the snapshot selects. */
  readonly columns: string[];

  constructor(
    private readonly spec: DatasetSpec,
    private readonly config: PostgresSourceConfig,
  ) {
    this.columns = [
      ...new Set([
        config.id,
        config.time,
        ...(config.deleted ? [config.deleted] : []),
        ...spec.dimensions,
        ...spec.metrics,
        ...spec.distinct,
      ]),
    ];
  }

  /** The id a row (or a delete's key) carries. */
  idOf(row: TextRow): string {
    const id = row[this.config.id];
    if (typeof id !== 'string') {
      throw new SourceError(
        `${this.spec.name}: a change has no "${this.config.id}"; the table's REPLICA IDENTITY must include it`,
        'permanent',
        { origin: 'config' },
      );
    }
    return id;
  }

  record(row: TextRow, cursor: string): SourceRecord {
    const id = this.idOf(row);
    const value = (name: string): string | null => {
      const text = row[name];
      if (text === undefined) {
        // pgoutput leaves out a TOASTed value an UPDATE did not change, unless the old row is logged.
        throw new SourceError(
          `${this.spec.name}: an update of row ${id} did not carry "${name}" (an unchanged TOASTed value): ` +
            'set REPLICA IDENTITY FULL on the table',
          'permanent',
          { origin: 'config' },
        );
      }
      return text;
    };
    const timeText = value(this.config.time);
    const time = timeText === null ? null : (epochMsOfText(timeText) ?? Math.floor(Number(timeText)));
    if (time === null || !Number.isFinite(time)) {
      throw new SourceError(
        `${this.spec.name}: row ${id} has no usable "${this.config.time}" (${timeText ?? 'NULL'})`,
        'permanent',
      );
    }
    const deleted = this.config.deleted === undefined ? null : value(this.config.deleted);
    return {
      id,
      time,
      cursor,
      // A boolean tombstone column means deleted when true; any other, deleted when set.
      deleted: deleted !== null && deleted !== 'f',
      dims: this.spec.dimensions.map(value),
      metrics: this.spec.metrics.map((name) => {
        const text = value(name);
        const number = text === null ? NaN : Number(text);
        return Number.isFinite(number) ? number : null;
      }),
      distinct: this.spec.distinct.map(value),
    };
  }

  /** A hard delete: only the id matters, the store knows what the record contributed. */
  tombstone(id: string, cursor: string): SourceRecord {
    return {
      id,
      time: 0,
      cursor,
      deleted: true,
      dims: this.spec.dimensions.map(() => null),
      metrics: this.spec.metrics.map(() => null),
      distinct: this.spec.distinct.map(() => null),
    };
  }
}
