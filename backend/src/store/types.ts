import type { DatasetSpec } from '../config/dataset';
import type { ErrorOrigin, Position, SourceRecord } from '../sources/types';

/** What the store remembers of a dataset's sync: the committed position and the data version. */
export interface SyncState {
  /** Identifies one continuous copy of the upstream; a new one starts after the state is lost. */
  generation: string;
  position: Position | null;
  /** Bumped by every applied batch; responses derive their ETags from it. */
  version: number;
  /** Live (not deleted, within retention) records held. */
  records: number;
  /** Set while this generation is a resync after a loss that has not caught up yet: its totals are incomplete. */
  resync: ResyncMark | null;
}

/** A resync under way, kept in the dataset's state so that failed runs and restarts do not forget it. */
export interface ResyncMark {
  /** When the loss was noticed (epoch ms). */
  since: number;
  /** Records read again so far, and the upstream's estimate of those left (null: no estimate). */
  applied: number;
  remaining: number | null;
}

export interface ApplyBatch {
  generation: string;
  records: SourceRecord[];
  /** The position committed together with the records; null keeps the stored one. */
  position: Position | null;
  /** Records with an event time before this (epoch ms) are outside retention and dropped. */
  cutoffMs: number;
}

export type ApplyResult =
  | {
      applied: true;
      version: number;
      upserts: number;
      deletes: number;
      /** Records identical to what the store already held (re-reads of the lookback window). */
      unchanged: number;
      /** First and last base bucket touched (epoch ms), or null when nothing changed. */
      touchedFrom: number | null;
      touchedTo: number | null;
    }
  /** The stored state is gone or belongs to another generation: nothing was applied. */
  | { applied: false; reason: 'state-lost' }
  /**
   * Something else wrote to the dataset after this batch was planned (another writer, or
   * one that a crash left half done and that was finished meanwhile): nothing was applied;
   * read the state again and fetch from its position.
   */
  | { applied: false; reason: 'conflict' };

export interface RollupRead {
  tierMs: number;
  projection: number;
  /** First bucket start (aligned to tierMs), inclusive. */
  from: number;
  /** Bucket start bound, exclusive. */
  to: number;
  /** Keep only groups whose dimension values (in projection order) pass. */
  accept?: (values: (string | null)[]) => boolean;
  /** The groups to read, when the caller has already listed them (saves listing them again). */
  groups?: (string | null)[][];
}

export interface RollupGroup {
  /** Dimension values of the projection, in declaration order. */
  values: (string | null)[];
  /** `fieldCount` doubles per bucket, dense from `from`; a bucket with count 0 is empty. */
  cells: Float64Array;
}

export interface DistinctRead {
  tierMs: number;
  projection: number;
  groups: (string | null)[][];
  field: number;
  /** Half-open ranges of bucket starts [from, to); one union count is returned per range. */
  ranges: [number, number][];
}

export type SyncOutcome = 'success' | 'failure';

export type RegionKind = 'failure' | 'resync' | 'pause' | 'reconcile';

/**
 * A change of a dataset's sync state that has ended, kept for annotations: failing until a run
 * succeeded again, resyncing after a store loss until caught up, or paused while the service
 * was not running. Regions still under way live in the sync status instead.
 */
export interface SyncRegion {
  kind: RegionKind;
  startedAt: number;
  endedAt: number;
  /** failure: runs that failed; resync: records read again; reconcile: records found gone upstream. */
  count: number;
  /** reconcile: records checked against the upstream. */
  checked?: number;
  /** failure: the last error. */
  error?: { message: string; class: string; origin?: ErrorOrigin };
}

/** One sync run, kept in a capped list per dataset: the last-updated annotations. */
export interface SyncEvent {
  startedAt: number;
  endedAt: number;
  outcome: SyncOutcome;
  records: number;
  /** `origin` is absent on events recorded before it was kept. */
  error?: { message: string; class: string; origin?: ErrorOrigin };
}

/** One step of Store.scanRecords. */
export interface RecordScan {
  cursor: string;
  records: { id: string }[];
}

export interface Store {
  readonly kind: 'redis' | 'memory';
  /** Prepares a dataset (scripts, in-memory maps); idempotent. */
  register(dataset: DatasetSpec): Promise<void>;
  readState(dataset: string): Promise<SyncState | null>;
  /** The dataset's generation, or null when the store holds none (lost): one cheap read for every answer. */
  readGeneration(dataset: string): Promise<string | null>;
  /**
   * Drops everything held for the dataset and starts a new generation at the beginning; with
   * `resync`, the new generation is marked as a resync in the same write.
   */
  resetDataset(dataset: string, resync?: ResyncMark): Promise<SyncState>;
  /** Updates (or, with null, clears) the resync mark of the generation; false when that generation is gone. */
  writeResync(dataset: string, generation: string, resync: ResyncMark | null): Promise<boolean>;
  applyBatch(dataset: string, batch: ApplyBatch): Promise<ApplyResult>;
  /**
   * Completes a batch that a crash left half applied (or drops one of which nothing was
   * applied yet), so that readState reports what is committed. The sync engine calls it
   * before it reads the state; applyBatch does it too.
   */
  finishPending(dataset: string): Promise<void>;
  /**
   * Lists the ids of the records held, a bounded step at a time, like Redis SCAN: cursor '0'
   * starts, and a returned cursor '0' means the listing is complete. Every record held
   * throughout the listing is returned at least once; one added or removed meanwhile may or
   * may not be; an id may come twice.
   */
  scanRecords(dataset: string, cursor: string, count: number): Promise<RecordScan>;
  /** Removes records and buckets older than the cutoff; returns how many records went. */
  trim(dataset: string, cutoffMs: number): Promise<number>;
  readRollups(dataset: string, read: RollupRead): Promise<RollupGroup[]>;
  /**
   * Identifies the data of [from, to): the generation and the highest version of any base
   * block in the range. It changes when, and only when, a batch touches the range (or the
   * dataset is reset), so a cached answer for the range stays valid while it is unchanged.
   */
  dataStamp(dataset: string, from: number, to: number): Promise<string>;
  /** Known value combinations of a projection. */
  readGroups(dataset: string, projection: number): Promise<(string | null)[][]>;
  countDistinct(dataset: string, read: DistinctRead): Promise<number[]>;
  appendEvent(dataset: string, event: SyncEvent): Promise<void>;
  /** Events whose run overlaps [from, to], newest first. */
  readEvents(dataset: string, from: number, to: number, limit: number): Promise<SyncEvent[]>;
  appendRegion(dataset: string, region: SyncRegion): Promise<void>;
  /** Ended regions that overlap [from, to], newest first. */
  readRegions(dataset: string, from: number, to: number, limit: number): Promise<SyncRegion[]>;
  writeStatus(dataset: string, status: Record<string, unknown>): Promise<void>;
  readStatus(dataset: string): Promise<Record<string, unknown> | null>;
  /** Resolves when the store answers; rejects quickly when it cannot. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Blocks a data stamp looks at one by one before it falls back to the dataset version. */
export const STAMP_MAX_BLOCKS = 2048;

/** The store refused or failed a command (a script error, a wrong type): never the upstream's fault. */
export class StoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}

/** The store cannot answer for now (down, loading, busy with a script, out of memory): worth retrying. */
export class StoreUnavailableError extends StoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
