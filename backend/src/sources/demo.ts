import { DAY_MS, HOUR_MS, type DatasetSpec } from '../config/dataset';
import { parseDuration } from '../config/duration';
import type { DemoSourceConfig } from '../config/schema';
import {
  dimensionGenerator,
  distinctGenerator,
  metricGenerator,
  type DimensionGenerator,
  type DistinctGenerator,
  type MetricGenerator,
} from './demo-data';
import { comparePositions } from './order';
import { Random } from './random';
import {
  SourceError,
  type FetchRequest,
  type FetchResult,
  type Position,
  type Source,
  type SourceRecord,
} from './types';

/** Traffic swings ±40% around the configured rate over a day, peaking mid-afternoon UTC. */
const DIURNAL_AMPLITUDE = 0.4;
const PEAK_MS = 15 * HOUR_MS;
const OMEGA = (2 * Math.PI) / DAY_MS;
/** Events are generated a minute at a time so a long history does not need one giant sort. */
const CHUNK_MS = 60_000;
/** Updates and deletes hit one of this many latest events, as corrections usually do. */
const RECENT_EVENTS = 1_000;
/** Events are forgotten this long after they leave the history window, bounding memory. */
const KEEP_BEYOND_HISTORY_MS = HOUR_MS;

interface Row {
  id: number;
  time: number;
  /** The cursor of the row's latest change; -1 once the row has been forgotten. */
  cursor: number;
  deleted: boolean;
  dims: string[];
  metrics: number[];
  distinct: string[];
}

/** One entry of the change log; superseded when its row changes again. */
interface Change {
  cursor: number;
  row: Row;
}

export interface DemoOptions {
  /** The clock, injectable so tests can move time. */
  now?: () => number;
}

/**
 * A simulated web-analytics upstream: page-view events arrive at the configured rate, a few
 * are corrected or deleted later, and each change gets a new cursor. Cursors are
 * microseconds of the change's time (bumped to stay strictly increasing), so a restarted
 * demo continues after the position a store kept rather than starting over at 1; ids are the
 * cursor of the insert.
 */
export class DemoSource implements Source {
  readonly kind = 'demo';
  private readonly random: Random;
  private readonly now: () => number;
  private readonly historyMs: number;
  /** Live rows by id, in insertion (hence time) order. */
  private readonly rows = new Map<number, Row>();
  /** A ring of the latest inserts, where corrections and deletes pick their target. */
  private readonly recent: Row[] = [];
  private recentNext = 0;
  /** Changes in cursor order; entries whose row changed since are skipped and compacted away. */
  private log: Change[] = [];
  private lastCursor = 0;
  private generatedUntil: number;
  private paused = false;
  private readonly dimensions: DimensionGenerator[];
  private readonly metrics: MetricGenerator[];
  private readonly distinct: DistinctGenerator[];
  /** Where the page dimension is, since purchases depend on the page. */
  private readonly pageIndex: number;

  constructor(
    private readonly spec: DatasetSpec,
    private readonly config: DemoSourceConfig,
    options: DemoOptions = {},
  ) {
    this.random = new Random(config.seed);
    this.now = options.now ?? Date.now;
    this.historyMs = parseDuration(config.history);
    this.dimensions = spec.dimensions.map(dimensionGenerator);
    this.metrics = spec.metrics.map(metricGenerator);
    this.distinct = spec.distinct.map(distinctGenerator);
    this.pageIndex = spec.dimensions.indexOf('page');
    const now = this.now();
    this.generatedUntil = now - this.historyMs;
    this.advance(now);
  }

  /** Simulates an unreachable upstream: fetches fail until resume(); events keep being due. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  async fetch(request: FetchRequest): Promise<FetchResult> {
    request.signal?.throwIfAborted();
    if (this.paused) throw new SourceError(`${this.spec.name}: demo upstream is paused`, 'transient');
    this.advance(this.now());
    const records: SourceRecord[] = [];
    let index = this.startIndex(request);
    for (; index < this.log.length && records.length < request.limit; index++) {
      const change = this.log[index]!;
      if (isCurrent(change)) records.push(toRecord(change.row));
    }
    while (index < this.log.length && !isCurrent(this.log[index]!)) index++;
    const last = records.at(-1);
    return {
      records,
      last: last ? { cursor: last.cursor, id: last.id } : null,
      done: index >= this.log.length,
    };
  }

  compare(a: Position, b: Position): number {
    return comparePositions(a, b);
  }

  /** Counts superseded log entries too: cheap, and an estimate is all that is promised. */
  async estimateRemaining(after: Position | null): Promise<number | null> {
    return this.log.length - this.startIndex({ after, limit: 0 });
  }

  async close(): Promise<void> {
    this.rows.clear();
    this.recent.length = 0;
    this.log = [];
  }

  /** `rewindMs` re-reads the changes made within that long before `after`, as cursors are times. */
  private startIndex(request: FetchRequest): number {
    const { after, rewindMs } = request;
    if (after === null) return 0;
    const cursor = Number(after.cursor);
    const id = Number(after.id);
    if (!Number.isSafeInteger(cursor) || !Number.isSafeInteger(id)) {
      throw new SourceError(
        `${this.spec.name}: "${after.cursor}"/"${after.id}" is not a demo position`,
        'permanent',
      );
    }
    if (rewindMs !== undefined) {
      const from = cursor - rewindMs * 1000;
      return firstIndex(this.log, (change) => change.cursor >= from);
    }
    return firstIndex(
      this.log,
      (change) => change.cursor > cursor || (change.cursor === cursor && change.row.id > id),
    );
  }

  /** Makes every event due by `until` happen, then forgets what has aged out. */
  private advance(until: number): void {
    while (this.generatedUntil < until) {
      const end = Math.min(until, this.generatedUntil + CHUNK_MS);
      this.generate(this.generatedUntil, end);
      this.generatedUntil = end;
    }
    this.forget(until - this.historyMs - KEEP_BEYOND_HISTORY_MS);
  }

  private generate(from: number, to: number): void {
    const count =
      Math.floor(expectedEvents(this.config.rate, to)) - Math.floor(expectedEvents(this.config.rate, from));
    const times = Array.from({ length: count }, () => from + Math.floor(this.random.next() * (to - from)));
    times.sort((a, b) => a - b);
    for (const time of times) {
      this.insert(time);
      if (this.random.chance(this.config.updateRatio)) this.correct(time);
      if (this.random.chance(this.config.deleteRatio)) this.remove(time);
    }
  }

  private insert(time: number): void {
    const cursor = this.nextCursor(time);
    const dims = this.dimensions.map((generate) => generate(this.random));
    const row: Row = {
      id: cursor,
      time,
      cursor,
      deleted: false,
      dims,
      metrics: this.metricsFor(dims),
      distinct: this.distinct.map((generate) => generate(this.random)),
    };
    this.rows.set(row.id, row);
    this.recent[this.recentNext] = row;
    this.recentNext = (this.recentNext + 1) % RECENT_EVENTS;
    this.log.push({ cursor, row });
  }

  /** A late correction: the visit lasted longer, or a purchase amount was adjusted. */
  private correct(time: number): void {
    const row = this.pickRecent();
    if (row === undefined) return;
    row.metrics = this.metricsFor(row.dims);
    this.touch(row, time);
  }

  private remove(time: number): void {
    const row = this.pickRecent();
    if (row === undefined) return;
    row.deleted = true;
    this.touch(row, time);
  }

  private pickRecent(): Row | undefined {
    const row = this.recent[this.random.int(this.recent.length)];
    return row === undefined || row.deleted || row.cursor < 0 ? undefined : row;
  }

  private touch(row: Row, time: number): void {
    row.cursor = this.nextCursor(time);
    this.log.push({ cursor: row.cursor, row });
  }

  private metricsFor(dims: string[]): number[] {
    const visit = { page: dims[this.pageIndex] };
    return this.metrics.map((generate) => generate(this.random, visit));
  }

  private nextCursor(time: number): number {
    this.lastCursor = Math.max(this.lastCursor + 1, time * 1000);
    return this.lastCursor;
  }

  private forget(before: number): void {
    for (const [id, row] of this.rows) {
      if (row.time >= before) break;
      this.rows.delete(id);
      row.cursor = -1;
    }
    // Superseded entries are dropped once they outnumber the current ones.
    if (this.log.length > 2 * this.rows.size + 1024) this.log = this.log.filter(isCurrent);
  }
}

/** Events due by time t since the epoch: the integral of the diurnally varying rate. */
function expectedEvents(ratePerSecond: number, t: number): number {
  const phase = OMEGA * (t - PEAK_MS) + Math.PI / 2;
  return (ratePerSecond / 1000) * (t - (DIURNAL_AMPLITUDE / OMEGA) * Math.cos(phase));
}

function isCurrent(change: Change): boolean {
  return change.row.cursor === change.cursor;
}

/** Binary search: the first index where `at` holds, given it holds for a suffix of the list. */
function firstIndex<T>(list: readonly T[], at: (item: T) => boolean): number {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (at(list[mid]!)) high = mid;
    else low = mid + 1;
  }
  return low;
}

function toRecord(row: Row): SourceRecord {
  return {
    id: String(row.id),
    time: row.time,
    cursor: String(row.cursor),
    deleted: row.deleted,
    dims: [...row.dims],
    metrics: [...row.metrics],
    distinct: [...row.distinct],
  };
}
