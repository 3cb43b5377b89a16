import { formatDuration } from '../config/duration';

/**
 * Every Redis key name the service uses, built here and nowhere else (the README's key map
 * describes them). A dataset's keys start with `<root>:{<dataset>}:`: the hash tag keeps
 * them in one Redis Cluster slot, so a script may touch any of them.
 */
export class DatasetKeys {
  readonly prefix: string;
  /** Hash: gen, format, cursor, cursorId, version, records, seq, trimmed, resync, and the journal's fields. */
  readonly state: string;
  /** Set: the slots (recordSlot) whose hash of records may hold records. */
  readonly recordSlots: string;
  /** Hash: piece index → the commands of one piece of a batch being applied. */
  readonly journal: string;
  /** Sorted set: starts of the blocks (blockBuckets base buckets) that hold bucket indexes, scored by themselves. */
  readonly bucketIndexes: string;
  /** Hash: base block → version of the last batch that changed it. */
  readonly blockVersions: string;
  /** List: the last sync runs (JSON), newest first. */
  readonly events: string;
  /** List: ended state regions (failing, resyncing, paused; JSON), newest first. */
  readonly regions: string;
  /** String: the sync status (JSON). */
  readonly status: string;
  /** Hash with a TTL: holder, token: the sync lease (absent when nobody holds it). */
  readonly lease: string;
  /** String: the last fencing token granted (a counter, never reset). */
  readonly fence: string;
  /** Hash: paused, resync: operators' controls (JSON each). */
  readonly control: string;

  constructor(root: string, dataset: string) {
    // Redis hashes the text between the first `{` and the next `}`: only the dataset's name may be there.
    if (/[{}]/.test(root + dataset))
      throw new Error(`Redis key prefix ${root} and dataset ${dataset} may not hold { or }`);
    this.prefix = `${root}:{${dataset}}:`;
    this.state = `${this.prefix}state`;
    this.recordSlots = `${this.prefix}rs`;
    this.journal = `${this.prefix}journal`;
    this.bucketIndexes = `${this.prefix}kz`;
    this.blockVersions = `${this.prefix}bv`;
    this.events = `${this.prefix}ev`;
    this.regions = `${this.prefix}rg`;
    this.status = `${this.prefix}status`;
    this.lease = `${this.prefix}lease`;
    this.fence = `${this.prefix}fence`;
    this.control = `${this.prefix}ctl`;
  }

  /** Hash: the records of one slot (recordSlot): field → stored record. */
  records(slot: string): string {
    return `${this.prefix}rec:${slot}`;
  }

  /** Set: ids of the records in one base bucket. */
  bucketIndex(bucket: number): string {
    return `${this.prefix}k:${bucket}`;
  }

  /** Hash: one block of cells of a tier (`1m`), projection (bitmask) and group: slot → cell. */
  block(tierMs: number, mask: number, group: string, block: number): string {
    return `${this.prefix}r:${formatDuration(tierMs)}:${mask}:${group}:${block}`;
  }

  /**
   * HyperLogLog of one distinct field (0-based here, 1-based in the name) in one cell, named by
   * its tier (`1h`) and bucket number (bucket start / tier): names are short, as there are many.
   */
  sketch(tierMs: number, mask: number, field: number, bucket: number, group: string): string {
    return `${this.prefix}h:${formatDuration(tierMs)}:${mask}:${field + 1}:${bucket / tierMs}:${group}`;
  }

  /** A sketch being rebuilt across pieces of one batch, renamed over the real one at the end. */
  scratch(token: string, n: number): string {
    return `${this.prefix}tmp:${token}:${n}`;
  }

  /** Set: the groups of a projection seen so far. */
  groups(mask: number): string {
    return `${this.prefix}g:${mask}`;
  }

  /** Keys that describe a dataset's history rather than its data: kept when the data is reset. */
  get keptOnReset(): string[] {
    return [this.status, this.events, this.regions, this.lease, this.fence, this.control];
  }
}

/** Records per hash of records whose ids are small integers. */
export const RECORDS_PER_HASH = 64;
/** Hashes that other ids are spread over. */
const ID_HASHES = 1 << 16;
const SMALL_INTEGER = /^(0|[1-9][0-9]{0,14})$/;

/**
 * Where a record is kept: small hashes, which Redis stores as compact listpacks, rather than
 * one hash of millions of fields. An id that is a small integer (a serial key, the usual case)
 * goes with its neighbours: slot ⌊id / 64⌋, field id mod 64, so the field costs a byte or two;
 * any other id goes to one of 65,536 slots by a hash of it (`x<n>`), field the id itself.
 */
export function recordSlot(id: string): { slot: string; field: string } {
  if (SMALL_INTEGER.test(id)) {
    const n = Number(id);
    return { slot: String(Math.floor(n / RECORDS_PER_HASH)), field: String(n % RECORDS_PER_HASH) };
  }
  // FNV-1a over the UTF-16 code units: cheap, and spreads similar ids apart.
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return { slot: `x${(h >>> 0) % ID_HASHES}`, field: id };
}

/** The id of a record from its slot and field (recordSlot's inverse). */
export function recordId(slot: string, field: string): string {
  return slot.startsWith('x') ? field : String(Number(slot) * RECORDS_PER_HASH + Number(field));
}

/** A response-cache entry, shared by every dataset. */
export function cacheKey(root: string, hash: string): string {
  return `${root}:cache:${hash}`;
}
