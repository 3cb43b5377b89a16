/**
 * A record as every source delivers it, already mapped to the dataset's fields.
 * `cursor` and `id` are kept as strings so no source loses precision (PostgreSQL
 * timestamps carry microseconds; ids may be bigints or UUIDs).
 */
export interface SourceRecord {
  id: string;
  /** Event time, epoch milliseconds. */
  time: number;
  cursor: string;
  deleted: boolean;
  /** Dimension values in the dataset's `dimensions` order; null where the upstream has none. */
  dims: (string | null)[];
  /** Metric values in `metrics` order. */
  metrics: (number | null)[];
  /** Distinct-field values in `distinct` order. */
  distinct: (string | null)[];
}

/** A position in the upstream's change order: the `(cursor, id)` of the last record read. */
export interface Position {
  cursor: string;
  id: string;
}

export interface FetchRequest {
  /** Read records strictly after this position; null reads from the start. */
  after: Position | null;
  /**
   * When set, re-read from `after.cursor - rewindMs` (inclusive) instead of strictly after
   * `after`, so records committed late with an older cursor value are picked up.
   */
  rewindMs?: number;
  limit: number;
  signal?: AbortSignal;
}

export interface FetchResult {
  records: SourceRecord[];
  /** Position of the last record returned, or null when none was. */
  last: Position | null;
  /** True when the upstream had no more records at the time of reading. */
  done: boolean;
}

export interface Source {
  readonly kind: string;
  fetch(request: FetchRequest): Promise<FetchResult>;
  /** Order of two positions as the upstream orders them (negative, zero, positive). */
  compare(a: Position, b: Position): number;
  /**
   * Which of these ids the upstream holds now, read in one consistent look where the upstream
   * has one; absent when the upstream cannot say (sync/reconcile.ts finds deletes with it).
   */
  existing?(ids: string[], signal?: AbortSignal): Promise<Set<string>>;
  /** How many records are left after a position, when the upstream can estimate it cheaply. */
  estimateRemaining?(after: Position | null): Promise<number | null>;
  /**
   * Push sources (a replication stream): `listener` is called when changes arrive, so that
   * the engine reads them at once instead of at the next interval.
   */
  onChanges?(listener: () => void): void;
  /**
   * Called once a batch and its position are committed in the store. A source that must
   * acknowledge what it has read (a replication slot) does it here and never sooner.
   */
  committed?(position: Position): void;
  close(): Promise<void>;
}

/**
 * Errors a source throws carry a class: transient ones (network, timeouts, 5xx) are
 * retried with backoff; permanent ones (bad credentials, missing table, bad SQL) are not
 * hammered.
 */
export type ErrorClass = 'transient' | 'permanent';

/**
 * Where a failure comes from: the upstream itself, the dataset's configuration of it (a
 * missing table or column, refused credentials, a wrong URL or path), the store, the query a
 * client sent, or our own code. A store failure is never reported as an upstream one.
 */
export type ErrorOrigin = 'upstream' | 'config' | 'store' | 'query' | 'internal';

export class SourceError extends Error {
  readonly origin: 'upstream' | 'config';

  constructor(
    message: string,
    readonly errorClass: ErrorClass,
    options?: { cause?: unknown; origin?: 'upstream' | 'config' },
  ) {
    super(message, options);
    this.name = 'SourceError';
    this.origin = options?.origin ?? 'upstream';
  }
}

/**
 * The upstream can no longer continue from the committed position (a table truncated, a
 * replication slot dropped): the engine drops what it holds and reads the dataset again.
 */
export class ResyncNeededError extends SourceError {
  constructor(message: string) {
    super(message, 'transient');
    this.name = 'ResyncNeededError';
  }
}
