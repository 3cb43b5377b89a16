import {
  SourceError,
  type ErrorClass,
  type FetchRequest,
  type FetchResult,
  type Position,
  type Source,
  type SourceRecord,
} from '../../src/sources/types';

/**
 * An upstream held in an array, read with the same keyset contract as the real sources
 * (cursor then id, strictly after the position). Tests change `rows` to play the upstream
 * and set `failWith` to make it fail.
 */
export class ArraySource implements Source {
  readonly kind = 'array';
  rows: SourceRecord[] = [];
  failWith: { message: string; class: ErrorClass } | null = null;
  /** Fail on the n-th fetch from now (1 = the next one), once. */
  failOnFetch: number | null = null;
  fetches = 0;

  compare(a: Position, b: Position): number {
    return Number(a.cursor) - Number(b.cursor) || Number(a.id) - Number(b.id);
  }

  async fetch(request: FetchRequest): Promise<FetchResult> {
    this.fetches++;
    if (this.failOnFetch !== null && --this.failOnFetch === 0) {
      this.failOnFetch = null;
      throw new SourceError('upstream went away mid-run', 'transient');
    }
    if (this.failWith) throw new SourceError(this.failWith.message, this.failWith.class);
    const sorted = [...this.rows].sort((a, b) =>
      this.compare({ cursor: a.cursor, id: a.id }, { cursor: b.cursor, id: b.id }),
    );
    const { after, rewindMs } = request;
    const from = after && rewindMs ? { cursor: String(Number(after.cursor) - rewindMs), id: '-1' } : after;
    const records = sorted
      .filter((r) => !from || this.compare({ cursor: r.cursor, id: r.id }, from) > 0)
      .slice(0, request.limit);
    const lastRecord = records[records.length - 1];
    return {
      records,
      last: lastRecord ? { cursor: lastRecord.cursor, id: lastRecord.id } : null,
      done: records.length < request.limit,
    };
  }

  async close(): Promise<void> {}
}
