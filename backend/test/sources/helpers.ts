import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { layoutFor, type DatasetSpec } from '../../src/config/dataset';
import type { SourceConfig } from '../../src/config/schema';
import type { FetchRequest, Position, Source, SourceRecord } from '../../src/sources/types';

export const PG_URL = process.env.LIVESYNC_TEST_PG_URL ?? 'postgres://root@127.0.0.1:5432/test';

export interface SpecOptions {
  name?: string;
  dimensions?: string[];
  metrics?: string[];
  distinct?: string[];
  lagMs?: number;
  lookbackMs?: number;
}

export function specFor(source: SourceConfig, options: SpecOptions = {}): DatasetSpec {
  const dimensions = options.dimensions ?? [];
  const metrics = options.metrics ?? [];
  return {
    name: options.name ?? 'events',
    source,
    dimensions,
    metrics,
    distinct: options.distinct ?? [],
    resolutionMs: 60_000,
    sync: {
      intervalMs: 5_000,
      batchSize: 500,
      lagMs: options.lagMs ?? 0,
      lookbackMs: options.lookbackMs ?? 30_000,
      permanentRetryMs: 300_000,
      reconcile: { everyMs: null, pageSize: 1000, perRun: 10_000 },
    },
    staleAfterMs: 120_000,
    retentionMs: 30 * 86_400_000,
    layout: layoutFor(dimensions.length, metrics.length, 60_000),
  };
}

export interface Drained {
  records: SourceRecord[];
  last: Position | null;
  fetches: number;
}

/**
 * Reads until the source says done, checking on the way that every batch moves strictly
 * forward in the source's own order, so a source that loops or goes back fails here.
 */
export async function drain(
  source: Source,
  limit: number,
  after: Position | null = null,
  first: Partial<FetchRequest> = {},
): Promise<Drained> {
  const records: SourceRecord[] = [];
  let last = after;
  let request: FetchRequest = { after, limit, ...first };
  for (let fetches = 1; fetches <= 10_000; fetches++) {
    const result = await source.fetch(request);
    for (const record of result.records) {
      if (last !== null && request.rewindMs === undefined && source.compare(record, last) <= 0) {
        throw new Error(`record ${record.id}@${record.cursor} is not after ${last.id}@${last.cursor}`);
      }
      if (request.rewindMs === undefined) last = { cursor: record.cursor, id: record.id };
      records.push(record);
    }
    if (result.last !== null) last = result.last;
    if (result.done) return { records, last, fetches };
    if (result.records.length === 0) throw new Error('a batch that is not done returned nothing');
    request = { after: last, limit };
  }
  throw new Error('the source never reported done');
}

/** A schema of its own for one test file, dropped afterwards; nothing else is touched. */
export class TestSchema {
  readonly name = `ls_test_${randomBytes(6).toString('hex')}`;
  readonly client = new Client({ connectionString: PG_URL });

  async create(): Promise<void> {
    await this.client.connect();
    await this.client.query(`CREATE SCHEMA ${this.name}`);
  }

  async drop(): Promise<void> {
    await this.client.query(`DROP SCHEMA IF EXISTS ${this.name} CASCADE`);
    await this.client.end();
  }

  async sql(text: string, values: unknown[] = []): Promise<unknown[]> {
    return (await this.client.query(text, values)).rows;
  }
}
