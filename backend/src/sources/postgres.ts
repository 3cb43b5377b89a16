import { Pool } from 'pg';
import type { DatasetSpec } from '../config/dataset';
import { parseDuration } from '../config/duration';
import type { PostgresSourceConfig } from '../config/schema';
import { compareDecimals, compareIds, comparePositions } from './order';
import { secretsOf, toSourceError } from './postgres-errors';
import {
  PostgresStatements,
  probeSql,
  relationOf,
  shapeFromTypes,
  type Relation,
  type Shape,
  type Start,
} from './postgres-sql';
import {
  SourceError,
  type FetchRequest,
  type FetchResult,
  type Position,
  type Source,
  type SourceRecord,
} from './types';

/** extract(epoch ...) became exact (numeric instead of double precision) in PostgreSQL 14. */
const MIN_SERVER_VERSION = 140000;

/** Beyond the server's statement_timeout: a silent network must not hang a fetch forever. */
const CLIENT_TIMEOUT_MARGIN_MS = 5_000;

interface Prepared {
  shape: Shape;
  statements: PostgresStatements;
}

/**
 * Reads a table or query in keyset order on (cursor, id), never further than now() - lag.
 * The column types are probed on first use, since they decide how cursors round-trip.
 */
export class PostgresSource implements Source {
  readonly kind = 'postgres';
  private readonly pool: Pool;
  private readonly relation: Relation;
  private readonly secrets: string[];
  private prepared: Promise<Prepared> | null = null;
  /** Known once the id column's type is: text ids are ordered as bytes, even when numeric-looking. */
  private idOrder: (a: string, b: string) => number = compareIds;

  constructor(
    private readonly spec: DatasetSpec,
    private readonly config: PostgresSourceConfig,
  ) {
    try {
      this.relation = relationOf(spec.name, config);
    } catch (err) {
      throw new SourceError((err as Error).message, 'permanent', { origin: 'config' });
    }
    this.secrets = secretsOf(config.url);
    const timeoutMs = parseDuration(config.statementTimeout);
    this.pool = new Pool({
      connectionString: config.url,
      max: config.poolSize,
      application_name: 'livesync',
      statement_timeout: timeoutMs,
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs > 0 ? timeoutMs + CLIENT_TIMEOUT_MARGIN_MS : undefined,
      keepAlive: true,
    });
    // An idle connection dropped by the server emits here; without a listener the process
    // would crash. The next query opens a fresh connection and reports any real failure.
    this.pool.on('error', () => undefined);
  }

  async fetch(request: FetchRequest): Promise<FetchResult> {
    const { statements, shape } = await this.prepare(request.signal);
    const statement = statements.page(this.startOf(request, shape), request.limit);
    const rows = await this.query(statement.text, statement.values, request.signal);
    const records = rows.map((row) => this.toRecord(row));
    const lastRecord = records.at(-1);
    return {
      records,
      last: lastRecord ? { cursor: lastRecord.cursor, id: lastRecord.id } : null,
      done: records.length < request.limit,
    };
  }

  /**
   * Rewinding moves a timestamp cursor back by rewindMs, inclusive. An integer cursor has no
   * time scale to rewind by, so rewindMs is ignored for it and reading resumes after `after`.
   */
  private startOf(request: FetchRequest, shape: Shape): Start {
    const { after, rewindMs } = request;
    if (after === null) return null;
    if (rewindMs !== undefined && shape.cursor.kind === 'time') {
      return { from: (BigInt(after.cursor) - BigInt(Math.round(rewindMs)) * 1000n).toString() };
    }
    return { after };
  }

  async existing(ids: string[], signal?: AbortSignal): Promise<Set<string>> {
    const { statements } = await this.prepare(signal);
    const statement = statements.existing(ids);
    const rows = await this.query(statement.text, statement.values, signal);
    return new Set(rows.map(([id]) => String(id)));
  }

  compare(a: Position, b: Position): number {
    return comparePositions(a, b, compareDecimals, this.idOrder);
  }

  /** The planner's estimate (statistics only, never a count) for a table; null for a query. */
  async estimateRemaining(after: Position | null): Promise<number | null> {
    if (this.config.query !== undefined) return null;
    const { statements } = await this.prepare();
    const statement = statements.estimate(after === null ? null : { after });
    const [row] = await this.query(statement.text, statement.values);
    const rows = (row?.[0] as [{ Plan?: { 'Plan Rows'?: unknown } }] | undefined)?.[0]?.Plan?.['Plan Rows'];
    return typeof rows === 'number' && Number.isFinite(rows) ? Math.round(rows) : null;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** Learns the column types once; a failed attempt is forgotten so the next fetch retries. */
  private prepare(signal?: AbortSignal): Promise<Prepared> {
    this.prepared ??= this.probe(signal).catch((err: unknown) => {
      this.prepared = null;
      throw err;
    });
    return this.prepared;
  }

  private async probe(signal?: AbortSignal): Promise<Prepared> {
    const [version] = await this.query("SELECT current_setting('server_version_num')::int", [], signal);
    if (typeof version?.[0] === 'number' && version[0] < MIN_SERVER_VERSION) {
      throw new SourceError(
        `${this.spec.name}: PostgreSQL 14 or later is required for exact cursors`,
        'permanent',
      );
    }
    const result = await this.run(probeSql(this.config, this.relation), [], signal);
    let shape: Shape;
    try {
      shape = shapeFromTypes(
        this.config,
        result.fields.map((field) => field.dataTypeID),
      );
    } catch (err) {
      throw new SourceError(`${this.spec.name}: ${(err as Error).message}`, 'permanent', {
        origin: 'config',
      });
    }
    if (shape.id === 'text') this.idOrder = compareBytes;
    else if (shape.id === 'number') this.idOrder = compareDecimals;
    return { shape, statements: new PostgresStatements(this.spec, this.config, this.relation, shape) };
  }

  private async query(text: string, values: unknown[], signal?: AbortSignal): Promise<unknown[][]> {
    return (await this.run(text, values, signal)).rows;
  }

  private async run(text: string, values: unknown[], signal?: AbortSignal) {
    signal?.throwIfAborted();
    try {
      return await abortable(this.pool.query<unknown[]>({ text, values, rowMode: 'array' }), signal);
    } catch (err) {
      // The caller's own abort is not an upstream failure: hand its reason back untouched.
      if (signal?.aborted && err === signal.reason) throw err;
      throw toSourceError(this.spec.name, err, this.secrets);
    }
  }

  /** Reads the columns in the order PostgresStatements selects them. */
  private toRecord(row: unknown[]): SourceRecord {
    const [id, time, cursor, deleted] = row;
    if (typeof id !== 'string') {
      throw new SourceError(`${this.spec.name}: a row has a NULL "${this.config.id}"`, 'permanent');
    }
    if (typeof time !== 'number') {
      throw new SourceError(`${this.spec.name}: row ${id} has a NULL "${this.config.time}"`, 'permanent');
    }
    const dims = this.spec.dimensions.length;
    const metrics = this.spec.metrics.length;
    return {
      id,
      time,
      // Never NULL: the statements skip rows without a cursor.
      cursor: String(cursor),
      deleted: deleted === true,
      dims: row.slice(4, 4 + dims).map(textOrNull),
      metrics: row.slice(4 + dims, 4 + dims + metrics).map(finiteOrNull),
      distinct: row.slice(4 + dims + metrics).map(textOrNull),
    };
  }
}

function textOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** NaN and ±Infinity (valid in float8) would poison every sum they join. */
function finiteOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** The order of COLLATE "C" in a UTF-8 database: bytes, i.e. code points, not UTF-16 units. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Settles with the promise, or rejects with the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
