import { resolveDataset, type DatasetSpec } from '../../src/config/dataset';
import type { SourceRecord } from '../../src/sources/types';
import { prng } from '../helpers';

/**
 * The issue 10 workload for Redis: a 4-dimension dataset (20 × 3 × 5 × 8 groups), about 230
 * records per base bucket when backfilled in order, and random updates that change metrics,
 * move records across buckets, hours and groups, delete and undelete them.
 */
export const WIDE_PER_BUCKET = 230;
const MIN = 60_000;
const COUNTRIES = 'US IN DE BR GB FR JP MX CA ID NG IT ES KR AU TR PL NL SE ZA'.split(' ');
const DEVICES = ['mobile', 'desktop', 'tablet'];
const PLANS = ['free', 'basic', 'pro', 'team', 'enterprise'];
const REGIONS = ['us-east', 'us-west', 'eu-west', 'eu-central', 'ap-south', 'ap-east', 'sa-east', 'af-south'];

export function wideSpec(name = 'wide', retention = '3650d'): DatasetSpec {
  return resolveDataset({
    name,
    source: { kind: 'demo', rate: 1, history: '1h', updateRatio: 0, deleteRatio: 0, seed: 1 },
    dimensions: ['country', 'device', 'plan', 'region'],
    metrics: ['amount', 'duration_ms'],
    distinct: ['user_id'],
    resolution: '1m',
    sync: { interval: '5s', batchSize: 5000, lag: '0s', lookback: '0s' },
    staleAfter: '2m',
    retention,
  });
}

export class WideData {
  private readonly random: () => number;
  /** Every record ever produced, deleted ones included, by id. */
  readonly rows = new Map<string, SourceRecord>();
  private next = 0;
  private cursor = 0;

  /**
   * `start`: the first base bucket; records are spread `perBucket` to a bucket from there,
   * or, with `spreadMs`, at random over that span.
   */
  constructor(
    seed: number,
    private readonly start: number,
    private readonly perBucket = WIDE_PER_BUCKET,
    private readonly spreadMs = 0,
  ) {
    this.random = prng(seed);
  }

  private pick<T>(values: readonly T[], skew = 1): T {
    return values[Math.floor(values.length * Math.pow(this.random(), skew))]!;
  }

  private fresh(id: string, time: number): SourceRecord {
    return {
      id,
      time,
      cursor: String(++this.cursor),
      deleted: false,
      dims: [this.pick(COUNTRIES, 2.2), this.pick(DEVICES), this.pick(PLANS, 1.5), this.pick(REGIONS)],
      metrics: [
        this.random() < 0.05 ? null : Math.round(this.random() * 50_000) / 100,
        Math.round(50 + this.random() * 2000),
      ],
      distinct: [`u${Math.floor(Math.pow(this.random(), 2) * 50_000)}`],
    };
  }

  /** Event time of the n-th record in order. */
  private timeOf(n: number): number {
    if (this.spreadMs > 0) return this.start + Math.floor(this.random() * this.spreadMs);
    return this.start + Math.floor(n / this.perBucket) * MIN + Math.floor(this.random() * MIN);
  }

  /** The span the records so far cover. */
  get endMs(): number {
    return this.spreadMs > 0
      ? this.start + this.spreadMs
      : this.start + Math.ceil(this.next / this.perBucket) * MIN;
  }

  /** The next `count` new records, in event-time order. */
  inserts(count: number): SourceRecord[] {
    const out: SourceRecord[] = [];
    for (let i = 0; i < count; i++, this.next++) {
      const r = this.fresh(String(this.next), this.timeOf(this.next));
      this.rows.set(r.id, r);
      out.push(r);
    }
    return out;
  }

  /** `count` random changes to records produced so far (distinct ids). */
  updates(count: number): SourceRecord[] {
    const ids = new Set<string>();
    while (ids.size < Math.min(count, this.next)) ids.add(String(Math.floor(this.random() * this.next)));
    return [...ids].map((id) => {
      const old = this.rows.get(id)!;
      const roll = this.random();
      let r: SourceRecord;
      if (old.deleted) r = { ...old, deleted: false };
      else if (roll < 0.45)
        r = {
          ...old,
          metrics: [this.random() < 0.1 ? null : Math.round(this.random() * 50_000) / 100, old.metrics[1]!],
        };
      else if (roll < 0.65)
        r = { ...old, time: this.start + Math.floor(this.random() * (this.endMs - this.start)) };
      else if (roll < 0.8) r = { ...this.fresh(id, old.time), distinct: old.distinct };
      else if (roll < 0.9) r = { ...old, distinct: [`u${Math.floor(this.random() * 50_000)}`] };
      else r = { ...old, deleted: true };
      r = { ...r, cursor: String(++this.cursor) };
      this.rows.set(id, r);
      return r;
    });
  }

  live(): SourceRecord[] {
    return [...this.rows.values()].filter((r) => !r.deleted);
  }
}
