import type { DatasetSpec } from '../config/dataset';
import type { PostgresSourceConfig } from '../config/schema';
import type { Position } from './types';

/** Double-quotes an identifier so names keep their case and cannot break out of the SQL. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `schema.table` → `"schema"."table"`; the schema part is optional. */
export function quoteTable(name: string): string {
  return name.split('.').map(quoteIdent).join('.');
}

/**
 * What the statements read from: the table, or the configured query as a subquery named
 * `src`. Columns are always qualified by `alias`: a bare ORDER BY "id" would sort by the
 * output column "id"::text, i.e. as text, and disagree with the keyset comparison.
 */
export interface Relation {
  from: string;
  alias: string;
}

export function columnOf(relation: Relation, name: string): string {
  return `${relation.alias}.${quoteIdent(name)}`;
}

export function relationOf(dataset: string, config: PostgresSourceConfig): Relation {
  const hasTable = config.table !== undefined;
  const hasQuery = config.query !== undefined;
  if (hasTable === hasQuery) {
    throw new Error(
      `datasets.${dataset}.source: set exactly one of "table" or "query" (${hasTable ? 'both are' : 'neither is'} set)`,
    );
  }
  if (config.table !== undefined) {
    const from = quoteTable(config.table);
    return { from, alias: quoteIdent(config.table.split('.').at(-1) ?? config.table) };
  }
  // A trailing semicolon is natural in a hand-written query but invalid inside a subquery.
  const query = (config.query ?? '').trim().replace(/;+\s*$/, '');
  return { from: `(${query}) AS src`, alias: 'src' };
}

/** Type OIDs from pg_type that decide how a column is read. */
const OID = {
  bool: 16,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  name: 19,
  float4: 700,
  float8: 701,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  numeric: 1700,
} as const;

const NUMBER_TYPES: Record<number, string> = {
  [OID.int2]: 'int2',
  [OID.int4]: 'int4',
  [OID.int8]: 'int8',
  [OID.numeric]: 'numeric',
};

/**
 * How the cursor column is read and written back. Timestamps travel as integer microseconds
 * since the epoch: JS dates stop at milliseconds, and rows a microsecond apart must neither
 * be skipped nor re-read forever.
 */
export type CursorColumn =
  { kind: 'time'; sqlType: 'timestamp' | 'timestamptz' } | { kind: 'number'; sqlType: string };

/** What the probe learnt about the columns whose type changes the SQL. */
export interface Shape {
  cursor: CursorColumn;
  time: 'time' | 'number';
  /** Text ids are ordered bytewise (COLLATE "C") so JS can reproduce the order exactly. */
  id: 'number' | 'text' | 'other';
  /** A boolean tombstone column means "deleted when true"; any other type, "deleted when set". */
  deleted: 'bool' | 'nullable' | 'none';
}

export function probeSql(config: PostgresSourceConfig, relation: Relation): string {
  const columns = [config.cursor, config.time, config.id, ...(config.deleted ? [config.deleted] : [])];
  return `SELECT ${columns.map((name) => columnOf(relation, name)).join(', ')} FROM ${relation.from} LIMIT 0`;
}

/** Reads the probe's field type OIDs; throws a readable message for unsupported types. */
export function shapeFromTypes(config: PostgresSourceConfig, oids: number[]): Shape {
  const [cursorOid, timeOid, idOid, deletedOid] = oids;
  return {
    cursor: cursorColumn(config.cursor, cursorOid),
    time: timeColumn(config.time, timeOid),
    id: idColumn(idOid),
    deleted: deletedOid === undefined ? 'none' : deletedOid === OID.bool ? 'bool' : 'nullable',
  };
}

function cursorColumn(name: string, oid: number | undefined): CursorColumn {
  if (oid === OID.timestamptz) return { kind: 'time', sqlType: 'timestamptz' };
  if (oid === OID.timestamp) return { kind: 'time', sqlType: 'timestamp' };
  const numberType = oid === undefined ? undefined : NUMBER_TYPES[oid];
  if (numberType) return { kind: 'number', sqlType: numberType };
  throw new Error(`cursor column "${name}" must be a timestamp, timestamptz or integer/numeric column`);
}

function timeColumn(name: string, oid: number | undefined): 'time' | 'number' {
  if (oid === OID.timestamptz || oid === OID.timestamp || oid === OID.date) return 'time';
  if (oid !== undefined && (NUMBER_TYPES[oid] || oid === OID.float4 || oid === OID.float8)) return 'number';
  throw new Error(
    `time column "${name}" must be a timestamp, timestamptz, date or epoch-milliseconds number`,
  );
}

function idColumn(oid: number | undefined): Shape['id'] {
  if (oid !== undefined && NUMBER_TYPES[oid]) return 'number';
  if (oid === OID.text || oid === OID.varchar || oid === OID.bpchar || oid === OID.name) return 'text';
  return 'other';
}

/** Where a page starts: the beginning, strictly after a position, or at a cursor inclusive. */
export type Start = null | { after: Position } | { from: string };

export interface Statement {
  text: string;
  values: unknown[];
}

/**
 * Builds the keyset statements of one dataset. Every value is a parameter; only
 * identifiers from the validated config are spliced in, quoted.
 */
export class PostgresStatements {
  private readonly cursor: string;
  private readonly id: string;

  constructor(
    private readonly spec: DatasetSpec,
    private readonly config: PostgresSourceConfig,
    private readonly relation: Relation,
    private readonly shape: Shape,
  ) {
    this.cursor = this.column(config.cursor);
    this.id = this.column(config.id) + (shape.id === 'text' ? ' COLLATE "C"' : '');
  }

  private column(name: string): string {
    return columnOf(this.relation, name);
  }

  /** Columns in the order PostgresSource reads them: id, time, cursor, deleted, dims, metrics, distinct. */
  private selectList(): string {
    const text = (name: string) => `${this.column(name)}::text`;
    return [
      `${this.column(this.config.id)}::text`,
      this.timeSql(),
      this.cursorSql(),
      this.deletedSql(),
      ...this.spec.dimensions.map(text),
      ...this.spec.metrics.map((name) => `${this.column(name)}::float8`),
      ...this.spec.distinct.map(text),
    ].join(', ');
  }

  private timeSql(): string {
    const time = this.column(this.config.time);
    // extract() returns numeric since PostgreSQL 14, so floor() sees the exact microseconds.
    if (this.shape.time === 'time') return `floor(extract(epoch from ${time}) * 1000)::float8`;
    return `floor(${time})::float8`;
  }

  private cursorSql(): string {
    if (this.shape.cursor.kind === 'number') return `${this.cursor}::text`;
    // Exact: extract(epoch) is numeric (PostgreSQL 14+) for both timestamp and timestamptz;
    // a timestamp without time zone counts its wall-clock reading as UTC, and cursorValue
    // inverts that the same way.
    return `(extract(epoch from ${this.cursor}) * 1000000)::bigint::text`;
  }

  private deletedSql(): string {
    const deleted = this.config.deleted === undefined ? '' : this.column(this.config.deleted);
    if (this.shape.deleted === 'bool') return `coalesce(${deleted}, false)`;
    if (this.shape.deleted === 'nullable') return `(${deleted} IS NOT NULL)`;
    return 'false';
  }

  /** A cursor as read by cursorSql, turned back into the column's own type. */
  private cursorValue(param: string): string {
    const cursor = this.shape.cursor;
    if (cursor.kind === 'number') return `${param}::${cursor.sqlType}`;
    // The product stays exact while |microseconds| < 2^53 (until the year 2255).
    return `('epoch'::${cursor.sqlType} + ${param}::bigint * interval '1 microsecond')`;
  }

  /** The conditions shared by a page and its estimate. */
  private where(start: Start, values: unknown[]): string {
    const param = (value: unknown) => {
      values.push(value);
      return `$${values.length}`;
    };
    // A NULL cursor never compares greater than a position, so such rows could only ever
    // be read by the first page: leave them out everywhere for a consistent answer.
    const conditions = [`${this.cursor} IS NOT NULL`];
    if (start && 'after' in start) {
      const cursor = this.cursorValue(param(start.after.cursor));
      conditions.push(`(${this.cursor}, ${this.id}) > (${cursor}, ${param(start.after.id)})`);
    } else if (start) {
      conditions.push(`${this.cursor} >= ${this.cursorValue(param(start.from))}`);
    }
    if (this.shape.cursor.kind === 'time') {
      // Rows stamped by still-open transactions appear late with an older cursor; reading only
      // up to now() - lag keeps the position behind them.
      conditions.push(
        `${this.cursor} <= now() - ${param(this.spec.sync.lagMs)}::float8 * interval '1 millisecond'`,
      );
    }
    return conditions.join(' AND ');
  }

  page(start: Start, limit: number): Statement {
    const values: unknown[] = [];
    const where = this.where(start, values);
    values.push(limit);
    return {
      text:
        `SELECT ${this.selectList()} FROM ${this.relation.from} WHERE ${where} ` +
        `ORDER BY ${this.cursor}, ${this.id} LIMIT $${values.length}`,
      values,
    };
  }

  /**
   * Which of the ids exist: one lookup on the key (the parameter takes the id column's type),
   * over the rows a sync can read (a NULL cursor is never read).
   */
  existing(ids: string[]): Statement {
    const id = this.column(this.config.id);
    return {
      text: `SELECT ${id}::text FROM ${this.relation.from} WHERE ${id} = ANY($1) AND ${this.cursor} IS NOT NULL`,
      values: [ids],
    };
  }

  /** The planner's row estimate for everything after a position: statistics only, no scan. */
  estimate(start: Start): Statement {
    const values: unknown[] = [];
    const where = this.where(start, values);
    return { text: `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${this.relation.from} WHERE ${where}`, values };
  }
}
