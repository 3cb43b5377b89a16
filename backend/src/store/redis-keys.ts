/**
 * Every Redis key name the service uses, built here and nowhere else (the README's key map
 * describes them). A dataset's keys start with `<root>:{<dataset>}:`: the hash tag keeps
 * them in one Redis Cluster slot, so a script may touch any of them.
 */
export class DatasetKeys {
  readonly prefix: string;
  /** Hash: gen, format, cursor, cursorId, version, records, seq, trimmed, resync, and the journal's fields. */
  readonly state: string;
  /** Hash: id → stored record. */
  readonly records: string;
  /** Hash: piece index → the commands of one piece of a batch being applied. */
  readonly journal: string;
  /** Sorted set: the bucket index keys by bucket start. */
  readonly bucketIndexes: string;
  /** Hash: base block → version of the last batch that changed it. */
  readonly blockVersions: string;
  /** List: the last sync runs (JSON), newest first. */
  readonly events: string;
  /** List: ended state regions (failing, resyncing, paused; JSON), newest first. */
  readonly regions: string;
  /** String: the sync status (JSON). */
  readonly status: string;

  constructor(root: string, dataset: string) {
    // Redis hashes the text between the first `{` and the next `}`: only the dataset's name may be there.
    if (/[{}]/.test(root + dataset))
      throw new Error(`Redis key prefix ${root} and dataset ${dataset} may not hold { or }`);
    this.prefix = `${root}:{${dataset}}:`;
    this.state = `${this.prefix}state`;
    this.records = `${this.prefix}rec`;
    this.journal = `${this.prefix}journal`;
    this.bucketIndexes = `${this.prefix}kz`;
    this.blockVersions = `${this.prefix}bv`;
    this.events = `${this.prefix}ev`;
    this.regions = `${this.prefix}rg`;
    this.status = `${this.prefix}status`;
  }

  /** Set: ids of the records in one base bucket. */
  bucketIndex(bucket: number): string {
    return `${this.prefix}k:${bucket}`;
  }

  /** String: one block of cells of a tier, projection (bitmask) and group. */
  block(tierMs: number, mask: number, group: string, block: number): string {
    return `${this.prefix}r:${tierMs}:${mask}:${group}:${block}`;
  }

  /** HyperLogLog of one distinct field (0-based here, 1-based in the name) in one cell. */
  sketch(tierMs: number, mask: number, field: number, bucket: number, group: string): string {
    return `${this.prefix}h:${tierMs}:${mask}:${field + 1}:${bucket}:${group}`;
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
    return [this.status, this.events, this.regions];
  }
}

/** A response-cache entry, shared by every dataset. */
export function cacheKey(root: string, hash: string): string {
  return `${root}:cache:${hash}`;
}
