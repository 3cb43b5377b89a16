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
  /** Why the data is read again: absent when the store lost it, 'operator' when asked to (POST …/resync). */
  reason?: 'operator';
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

export type RegionKind = 'failure' | 'resync' | 'pause' | 'reconcile' | 'operation';

/** What an operator did to a dataset (http/routes/ops.ts). */
export type Operation = 'pause' | 'resume' | 'resync';

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
  /** pause and resync asked for by an operator; operation: what was done, and by whom. */
  operation?: Operation;
  by?: string;
}

/** One sync run, kept in a capped list per dataset: the last-updated annotations. */
export interface SyncEvent {
  startedAt: number;
  endedAt: number;
  outcome: SyncOutcome;
  records: number;
  /** `origin` is absent on events recorded before it was kept. */
  error?: { message: string; class: string; origin?: ErrorOrigin };
  /** The replica that ran it and its lease's fencing token (absent on events recorded before leases). */
  holder?: string;
  token?: number;
}

/** The sync lease of a dataset as granted (see sync/lease.ts and the README's "One syncing replica per dataset"). */
export interface LeaseGrant {
  /** The replica granted it: a name unique to one process. */
  holder: string;
  /** The fencing token: grows with every new grant of the dataset, and every write of the sync path carries it. */
  token: number;
}

/** Who holds a dataset's lease, as the store sees it now. */
export interface LeaseInfo extends LeaseGrant {
  /** Milliseconds until it expires unless renewed (Infinity in memory: one process, nobody to hand it to). */
  ttlMs: number;
}

/**
 * Operators' controls of a dataset, kept in the store beside its data (not reset with it), so
 * they hold across restarts and replicas: whichever replica holds the lease obeys them.
 */
export interface DatasetControl {
  /** Set while syncing is paused: when and by whom. */
  paused: { at: number; by: string } | null;
  /** A resync from scratch asked for and not started yet. */
  resync: { at: number; by: string } | null;
  /** The last resume: when and by whom (for the annotation of the pause it ended). */
  resumed: { at: number; by: string } | null;
}

/** One step of Store.scanRecords. */
export interface RecordScan {
  cursor: string;
  records: { id: string; cursor: string }[];
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
   * Lists the records held (each id with the upstream cursor of its held version), a bounded
   * step at a time, like Redis SCAN: cursor '0' starts, and a returned cursor '0' means the
   * listing is complete. Every record held
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
  /**
   * Grants the dataset's sync lease to `holder` for `ttlMs` when nobody holds it (a new,
   * higher fencing token) or `holder` already does (its token, extended); otherwise returns
   * who holds it (`granted` false) and for how much longer. From a grant on, this store fences every write of the dataset's sync path
   * (applyBatch, resetDataset, writeResync, trim, appendEvent, appendRegion, writeStatus,
   * clearResyncRequest) with the token: once the lease has expired or passed to another
   * holder, they throw LeaseLostError and write nothing.
   */
  acquireLease(dataset: string, holder: string, ttlMs: number): Promise<LeaseInfo & { granted: boolean }>;
  /** Extends the lease this store was granted; false (and the token forgotten) when it is no longer held. */
  renewLease(dataset: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease up now (shutdown), so another replica takes over without waiting for it to expire. */
  releaseLease(dataset: string): Promise<void>;
  /** The current holder, or null when nobody holds the lease. */
  readLease(dataset: string): Promise<LeaseInfo | null>;
  readControl(dataset: string): Promise<DatasetControl>;
  /** Sets (or with null clears) one control; any replica may, the lease holder obeys. */
  writeControl<K extends keyof DatasetControl>(
    dataset: string,
    name: K,
    value: DatasetControl[K],
  ): Promise<void>;
  /** Clears a resync request as the holder starts it (fenced). */
  clearResyncRequest(dataset: string): Promise<void>;
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

/**
 * A write of the sync path was refused because this process does not hold the dataset's lease
 * (it expired while the process was paused, or another replica took it over): not a failure
 * of the store, and never retried as one.
 */
export class LeaseLostError extends StoreError {
  constructor(dataset: string) {
    super(`${dataset}: this replica no longer holds the sync lease; the write was refused`);
    this.name = 'LeaseLostError';
  }
}

/** The store cannot answer for now (down, loading, busy with a script, out of memory): worth retrying. */
export class StoreUnavailableError extends StoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
