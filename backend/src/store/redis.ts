import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions, type Result } from 'ioredis';
import { CELL, projectionDimensions, type DatasetSpec } from '../config/dataset';
import type { Position } from '../sources/types';
import { decodeGroup, encodeGroup } from './groups';
import { DatasetKeys } from './redis-keys';
import {
  chunked,
  encodePiece,
  MAX_ARGS,
  packUnits,
  PIECE_LIMITS,
  unit,
  type Unit,
  type Op,
  type PieceLimits,
} from './redis-pieces';
import { planBatch, type CellRef, type Plan, type PlanReads } from './rules';
import type {
  ApplyBatch,
  ApplyResult,
  DistinctRead,
  RecordScan,
  ResyncMark,
  RollupGroup,
  RollupRead,
  Store,
  SyncEvent,
  SyncRegion,
  SyncState,
} from './types';
import { STAMP_MAX_BLOCKS, StoreError, StoreUnavailableError } from './types';

const EVENTS_KEPT = 1000;
/**
 * How a dataset's data is laid out; a state of another format (the MessagePack records of
 * the single apply.lua before it, say) reads as no state, and the engine syncs again.
 */
const FORMAT = '2';
const LITTLE_ENDIAN = endianness() === 'LE';
/** Base buckets of records, and of time, that one trim slice looks at. */
const TRIM_SLICE = 200;
/** Fields and members per read command (HMGET, SSCAN COUNT): each stays well under a millisecond. */
const READ_CHUNK = 500;
/** Byte ranges per ranges.lua call, and records per buckets.lua call: each well under a millisecond. */
const RANGES_PER_CALL = 50;
const BUCKET_RECORDS_PER_CALL = 500;
/** Values per PFADD, and bytes of records per HSET: each a fraction of a piece (see opCost). */
const PFADD_VALUES = 256;
const HSET_BYTES = 64 * 1024;
/**
 * PFMERGE: the estimated cost of one command, and of a source that is probably dense (a cell
 * of this many records or more; Redis turns a sketch dense past about 3 kB of sparse form).
 */
const MERGE_COST = 1_200;
const MERGE_BASE_COST = 60;
const DENSE_RECORDS = 300;
const DENSE_MERGE_COST = 400;
/** Bytes of pieces one journal.lua call stores, in pieces' worth: as much as one piece may hold. */
const JOURNAL_PIECES_BYTES = 1;

interface Registered {
  spec: DatasetSpec;
  keys: DatasetKeys;
}

/** The state fields a write is planned against. */
interface Head {
  gen: string | null;
  seq: string;
  version: number;
  records: number;
  journal: string | null;
  ready: boolean;
  next: number;
  pieces: number;
}

type Outcome = 'ok' | 'lost' | 'conflict';

export interface JournalStep {
  /**
   * `planned`: the batch is planned, nothing written yet (index -1); `stored`: the journal
   * holds the first `index + 1` pieces; `applied`: piece `index` is applied.
   */
  kind: 'planned' | 'stored' | 'applied';
  index: number;
  pieces: number;
}

export interface RedisStoreOptions {
  /** How much one piece may hold (tests make pieces small to split every batch). */
  pieceLimits?: Partial<PieceLimits>;
  /** Runs after each step of a journal; a test stops a process there to crash between pieces. */
  onStep?: (step: JournalStep) => Promise<void> | void;
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    livesyncRun(state: string, generation: string, seq: string, piece: Buffer): Result<string, Context>;
    livesyncJournal(
      state: string,
      journal: string,
      mode: 'open' | 'add',
      generation: string,
      seq: string,
      id: string,
      pieces: number,
      from: number,
      to: number,
      first: number,
      ...stored: Buffer[]
    ): Result<string, Context>;
    livesyncPiece(state: string, journal: string, id: string, index: number): Result<string, Context>;
    livesyncAbandon(state: string, journal: string, id: string): Result<string, Context>;
    livesyncResync(state: string, generation: string, format: string, mark: string): Result<number, Context>;
    livesyncRangesBuffer(...ranges: (string | number)[]): Result<Buffer[], Context>;
    livesyncBuckets(
      records: string,
      limit: number,
      ...indexes: string[]
    ): Result<([string[], (string | null)[]] | 'big')[], Context>;
  }
}

function script(name: string): string {
  // Lua files sit beside the sources and are copied next to the compiled output.
  for (const dir of [join(__dirname, 'lua'), join(__dirname, '../../src/store/lua')]) {
    let text: string;
    try {
      text = readFileSync(join(dir, name), 'utf8');
    } catch {
      continue; // try the next place
    }
    return text.replace(/^--#include (\S+)$/gm, (_, included: string) => script(included));
  }
  throw new Error(`Lua script ${name} not found`);
}

export function redisOptions(): RedisOptions {
  return {
    // Requests fail fast while Redis is away (a clear 503, never a hang); the sync
    // engine retries on its own schedule, and the client keeps reconnecting.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 10_000,
    lazyConnect: true,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  };
}

export class RedisStore implements Store {
  readonly kind = 'redis';
  private readonly datasets = new Map<string, Registered>();
  private readonly limits: PieceLimits;
  private readonly onStep: RedisStoreOptions['onStep'];

  constructor(
    readonly redis: Redis,
    private readonly root: string,
    options: RedisStoreOptions = {},
  ) {
    this.limits = { ...PIECE_LIMITS, ...options.pieceLimits };
    this.onStep = options.onStep;
    redis.defineCommand('livesyncRun', { numberOfKeys: 1, lua: script('run.lua') });
    redis.defineCommand('livesyncJournal', { numberOfKeys: 2, lua: script('journal.lua') });
    redis.defineCommand('livesyncPiece', { numberOfKeys: 2, lua: script('piece.lua') });
    redis.defineCommand('livesyncAbandon', { numberOfKeys: 2, lua: script('abandon.lua') });
    redis.defineCommand('livesyncRanges', { numberOfKeys: 0, lua: script('ranges.lua') });
    redis.defineCommand('livesyncBuckets', { numberOfKeys: 1, lua: script('buckets.lua') });
    redis.defineCommand('livesyncResync', { numberOfKeys: 1, lua: script('resync.lua') });
  }

  /** Connects and waits until Redis answers, so start-up fails loudly on a wrong URL. */
  static async connect(url: string, prefix: string, options: RedisStoreOptions = {}): Promise<RedisStore> {
    const redis = new Redis(url, redisOptions());
    // Without a listener ioredis reports every failed reconnect as an unhandled error.
    redis.on('error', () => undefined);
    try {
      await redis.connect();
    } catch (err) {
      redis.disconnect();
      throw new StoreUnavailableError(`cannot connect to Redis: ${(err as Error).message}`, { cause: err });
    }
    return new RedisStore(redis, prefix, options);
  }

  private dataset(name: string): Registered {
    const found = this.datasets.get(name);
    if (!found) throw new Error(`dataset ${name} is not registered with the store`);
    return found;
  }

  async register(spec: DatasetSpec): Promise<void> {
    this.datasets.set(spec.name, { spec, keys: new DatasetKeys(this.root, spec.name) });
  }

  async readState(dataset: string): Promise<SyncState | null> {
    const state = await this.call(() => this.redis.hgetall(this.dataset(dataset).keys.state));
    if (!state.gen || state.format !== FORMAT) return null;
    return {
      generation: state.gen,
      position:
        state.cursor !== undefined && state.cursorId !== undefined
          ? { cursor: state.cursor, id: state.cursorId }
          : null,
      version: Number(state.version ?? 0),
      records: Number(state.records ?? 0),
      resync: state.resync ? (JSON.parse(state.resync) as ResyncMark) : null,
    };
  }

  async finishPending(dataset: string): Promise<void> {
    const ds = this.dataset(dataset);
    const head = await this.head(ds);
    if (head.journal) await this.settle(ds, head);
  }

  async readGeneration(dataset: string): Promise<string | null> {
    const { keys } = this.dataset(dataset);
    const [gen, format] = await this.call(() => this.redis.hmget(keys.state, 'gen', 'format'));
    return gen && format === FORMAT ? gen : null;
  }

  async writeResync(dataset: string, generation: string, resync: ResyncMark | null): Promise<boolean> {
    const { keys } = this.dataset(dataset);
    const mark = resync ? JSON.stringify(resync) : '';
    return (await this.call(() => this.redis.livesyncResync(keys.state, generation, FORMAT, mark))) === 1;
  }

  async resetDataset(dataset: string, resync?: ResyncMark): Promise<SyncState> {
    const { keys } = this.dataset(dataset);
    const kept = new Set(keys.keptOnReset);
    await this.call(async () => {
      let cursor = '0';
      do {
        const [next, found] = await this.redis.scan(cursor, 'MATCH', `${keys.prefix}*`, 'COUNT', 1000);
        cursor = next;
        const doomed = found.filter((k) => !kept.has(k));
        if (doomed.length > 0) await this.redis.unlink(...doomed);
      } while (cursor !== '0');
    });
    const generation = randomUUID();
    const fields = {
      gen: generation,
      format: FORMAT,
      version: 0,
      records: 0,
      seq: 0,
      ...(resync ? { resync: JSON.stringify(resync) } : {}),
    };
    await this.call(() => this.redis.hset(keys.state, fields));
    return { generation, position: null, version: 0, records: 0, resync: resync ?? null };
  }

  /**
   * Plans the batch with the rules from what Redis holds (plain pipelined reads), then writes
   * the plan: in one guarded script when it is small, else through a journal of pieces.
   */
  async applyBatch(dataset: string, batch: ApplyBatch): Promise<ApplyResult> {
    const ds = this.dataset(dataset);
    let head = await this.head(ds);
    if (head.gen !== batch.generation) return { applied: false, reason: 'state-lost' };
    if (head.journal) {
      await this.settle(ds, head);
      head = await this.head(ds);
      if (head.gen !== batch.generation) return { applied: false, reason: 'state-lost' };
    }
    const plan = await this.call(() =>
      planBatch(ds.spec, batch.records, batch.cutoffMs, this.reads(ds), { exactDistinct: false }),
    );
    const changed = plan.changes.length > 0;
    const version = changed ? head.version + 1 : head.version;
    const result: ApplyResult = {
      applied: true,
      version,
      upserts: plan.upserts,
      deletes: plan.deletes,
      unchanged: plan.unchanged,
      touchedFrom: plan.touchedFrom,
      touchedTo: plan.touchedTo,
    };
    if (!changed && !batch.position) return result;
    const data = changed ? this.dataOps(ds, plan, version) : [];
    const commit = commitOps(ds.keys, {
      version,
      records: head.records + plan.recordDelta,
      position: batch.position,
    });
    await this.onStep?.({ kind: 'planned', index: -1, pieces: 0 });
    const outcome = await this.write(ds, head, data, commit, plan);
    if (outcome === 'lost') return { applied: false, reason: 'state-lost' };
    if (outcome === 'conflict') return { applied: false, reason: 'conflict' };
    return result;
  }

  /**
   * The commands that write a plan, as units that must each run within one piece, in the
   * order they must run (finer sketches before the merges that read them).
   */
  private dataOps({ spec, keys }: Registered, plan: Plan, version: number): Unit[] {
    const { tiers, projections, fieldCount: F, blockBuckets: B } = spec.layout;
    const base = tiers[0]!;
    const ops: Op[] = [];

    const writes: string[] = [];
    const removals: string[] = [];
    const adds = new Map<number, string[]>();
    const removes = new Map<number, string[]>();
    const push = (map: Map<number, string[]>, bucket: number, id: string) => {
      const list = map.get(bucket);
      if (list) list.push(id);
      else map.set(bucket, [id]);
    };
    for (const c of plan.changes) {
      if (c.encoded) writes.push(c.id, c.encoded);
      else removals.push(c.id);
      const from = c.before && Math.floor(c.before.time / base) * base;
      const to = c.after && Math.floor(c.after.time / base) * base;
      if (from === to) continue;
      if (from !== null) push(removes, from, c.id);
      if (to !== null) push(adds, to, c.id);
    }
    ops.push(...chunked('HSET', keys.records, writes, MAX_ARGS, { maxBytes: HSET_BYTES, stride: 2 }));
    ops.push(...chunked('HDEL', keys.records, removals));
    for (const [bucket, ids] of removes) ops.push(...chunked('SREM', keys.bucketIndex(bucket), ids));
    for (const [bucket, ids] of adds) {
      ops.push(...chunked('SADD', keys.bucketIndex(bucket), ids));
      ops.push(['ZADD', keys.bucketIndexes, String(bucket), keys.bucketIndex(bucket)]);
    }

    // Cells, one SETRANGE per run of adjacent cells of a block.
    const cellBytes = F * 8;
    const byBlock = new Map<string, { slot: number; value: Float64Array }[]>();
    const groups = new Map<number, Set<string>>();
    for (const { ref, value } of plan.cells) {
      const tierMs = tiers[ref.tier]!;
      const mask = projections[ref.projection]!;
      const idx = ref.bucket / tierMs;
      const block = Math.floor(idx / B);
      const key = keys.block(tierMs, mask, ref.group, block);
      const list = byBlock.get(key);
      const entry = { slot: idx - block * B, value };
      if (list) list.push(entry);
      else byBlock.set(key, [entry]);
      if (ref.tier === 0 && value[CELL.count]! > 0) {
        let set = groups.get(mask);
        if (!set) groups.set(mask, (set = new Set()));
        set.add(ref.group);
      }
    }
    for (const [key, cells] of byBlock) {
      // Last run first: the first SETRANGE gives a new string its final length at once,
      // where growing it run by run would leave Redis's doubling slack behind.
      cells.sort((a, b) => b.slot - a.slot);
      for (let i = 0; i < cells.length;) {
        let j = i + 1;
        while (j < cells.length && cells[j]!.slot === cells[j - 1]!.slot - 1) j++;
        const bytes = Buffer.alloc((j - i) * cellBytes);
        for (let c = i; c < j; c++) writeCell(bytes, (j - 1 - c) * cellBytes, cells[c]!.value);
        ops.push(['SETRANGE', key, String(cells[j - 1]!.slot * cellBytes), bytes]);
        i = j;
      }
    }
    for (const [mask, set] of groups) ops.push(...chunked('SADD', keys.groups(mask), [...set]));

    const sketch = (ref: CellRef, field: number) =>
      keys.sketch(tiers[ref.tier]!, projections[ref.projection]!, field, ref.bucket, ref.group);
    const units: Unit[] = ops.map((op) => unit(op));
    const token = randomUUID().slice(0, 8);
    let scratch = 0;
    for (const d of plan.distinct) {
      const key = sketch(d.ref, d.field);
      if (d.empty) {
        units.push(unit(['DEL', key]));
      } else if (d.rebuild && 'values' in d.rebuild) {
        const steps = chunked('PFADD', '', d.rebuild.values, PFADD_VALUES).map((op) => unit(op));
        units.push(...rebuild(key, steps, keys.scratch(token, scratch++)));
      } else if (d.rebuild) {
        const steps = mergeSteps(
          d.rebuild.merge.map((s) => ({ key: sketch(s.ref, d.field), records: s.records })),
        );
        units.push(...rebuild(key, steps, keys.scratch(token, scratch++)));
      } else {
        const added: string[] = [];
        for (const [v, n] of d.net) if (n > 0) added.push(v);
        units.push(...chunked('PFADD', key, added, PFADD_VALUES).map((op) => unit(op)));
      }
    }

    const blockVersions: string[] = [];
    for (const block of plan.blocks) blockVersions.push(String(block), String(version));
    units.push(
      ...chunked('HSET', keys.blockVersions, blockVersions, MAX_ARGS, { stride: 2 }).map((op) => unit(op)),
    );
    return units;
  }

  /** Writes data and commit commands: one guarded script when they fit in a piece, else a journal. */
  private async write(ds: Registered, head: Head, data: Unit[], commit: Op[], plan: Plan): Promise<Outcome> {
    const { keys } = ds;
    const dataPieces = packUnits(data, this.limits);
    if (dataPieces.length <= 1) {
      const piece = encodePiece([...(dataPieces[0] ?? []), ...commit]);
      const reply = await this.call(() => this.redis.livesyncRun(keys.state, head.gen!, head.seq, piece));
      return reply === 'ok' ? 'ok' : reply === 'lost' ? 'lost' : 'conflict';
    }
    // The last piece commits and closes the journal, all at once.
    const pieces = [...dataPieces, [...commit, ...closeOps(keys)]].map(encodePiece);
    const id = randomUUID();
    const from = plan.touchedFrom ?? 0;
    const to = plan.touchedTo ?? 0;
    for (let first = 0; first < pieces.length;) {
      let last = first;
      let bytes = pieces[first]!.length;
      while (
        last + 1 < pieces.length &&
        bytes + pieces[last + 1]!.length <= JOURNAL_PIECES_BYTES * this.limits.bytes
      ) {
        bytes += pieces[++last]!.length;
      }
      const reply = await this.call(() =>
        this.redis.livesyncJournal(
          keys.state,
          keys.journal,
          first === 0 ? 'open' : 'add',
          head.gen!,
          head.seq,
          id,
          pieces.length,
          from,
          to,
          first,
          ...pieces.slice(first, last + 1),
        ),
      );
      if (reply === 'lost') return 'lost';
      if (reply !== 'ok' && reply !== 'ready') return 'conflict';
      await this.onStep?.({ kind: 'stored', index: last, pieces: pieces.length });
      first = last + 1;
    }
    await this.finish(ds, id, 0, pieces.length);
    return 'ok';
  }

  /** Applies the pieces of a ready journal from `next` on; someone else may be doing the same. */
  private async finish(ds: Registered, id: string, next: number, count: number): Promise<void> {
    const { keys } = ds;
    for (let index = next; index < count; index++) {
      const reply = await this.call(() => this.redis.livesyncPiece(keys.state, keys.journal, id, index));
      // Closed: committed, by the last piece, which whoever else finishes it applied.
      if (reply === 'gone') return;
      if (reply === 'ahead')
        throw new StoreError(`journal ${id}: piece ${index} is ahead of the applied ones`);
      await this.onStep?.({ kind: 'applied', index, pieces: count });
    }
  }

  /** A journal found open: finished when ready (it may commit), dropped when not (nothing of it ran). */
  private async settle(ds: Registered, head: Head): Promise<void> {
    if (!head.journal) return;
    if (head.ready) await this.finish(ds, head.journal, head.next, head.pieces);
    else await this.call(() => this.redis.livesyncAbandon(ds.keys.state, ds.keys.journal, head.journal!));
  }

  private async head({ keys }: Registered): Promise<Head> {
    const [gen, seq, version, records, journal, ready, next, pieces, format] = await this.call(() =>
      this.redis.hmget(
        keys.state,
        'gen',
        'seq',
        'version',
        'records',
        'journal',
        'jready',
        'jnext',
        'jpieces',
        'format',
      ),
    );
    return {
      gen: format === FORMAT ? (gen ?? null) : null,
      seq: seq ?? '0',
      version: Number(version ?? 0),
      records: Number(records ?? 0),
      journal: journal ?? null,
      ready: ready !== null && ready !== undefined,
      next: Number(next ?? 0),
      pieces: Number(pieces ?? 0),
    };
  }

  /** What the rules read: records by id, cells by block span, the records of base buckets. */
  private reads({ spec, keys }: Registered): PlanReads {
    const { tiers, projections, fieldCount: F, blockBuckets: B } = spec.layout;
    const cellBytes = F * 8;
    const readRanges = async (ranges: (readonly [string, number, number])[]): Promise<Buffer[]> => {
      const pipeline = this.redis.pipeline();
      for (let i = 0; i < ranges.length; i += RANGES_PER_CALL) {
        pipeline.livesyncRangesBuffer(...ranges.slice(i, i + RANGES_PER_CALL).flat());
      }
      return replies<Buffer[]>(await pipeline.exec()).flat();
    };
    const hmget = async (ids: string[]): Promise<(string | null)[]> => {
      const pipeline = this.redis.pipeline();
      for (let i = 0; i < ids.length; i += READ_CHUNK)
        pipeline.hmget(keys.records, ...ids.slice(i, i + READ_CHUNK));
      return replies<(string | null)[]>(await pipeline.exec()).flat();
    };
    return {
      records: hmget,
      cells: async (refs) => {
        // One GETRANGE per block, over the span of the cells wanted from it.
        const spans = new Map<string, { lo: number; hi: number; at: number[] }>();
        const where: { key: string; slot: number }[] = [];
        refs.forEach((ref) => {
          const idx = ref.bucket / tiers[ref.tier]!;
          const block = Math.floor(idx / B);
          const key = keys.block(tiers[ref.tier]!, projections[ref.projection]!, ref.group, block);
          const slot = idx - block * B;
          const span = spans.get(key);
          if (!span) spans.set(key, { lo: slot, hi: slot, at: [] });
          else {
            span.lo = Math.min(span.lo, slot);
            span.hi = Math.max(span.hi, slot);
          }
          where.push({ key, slot });
        });
        const order = [...spans.keys()];
        const read = await readRanges(
          order.map((key) => {
            const { lo, hi } = spans.get(key)!;
            return [key, lo * cellBytes, (hi + 1) * cellBytes - 1] as const;
          }),
        );
        const buffers = new Map(read.map((buf, i) => [order[i]!, buf]));
        return where.map(({ key, slot }) => {
          const buf = buffers.get(key)!;
          const at = (slot - spans.get(key)!.lo) * cellBytes;
          if (buf.length < at + cellBytes) return null;
          const cell = readCell(buf, at, F);
          return cell[CELL.count]! > 0 ? cell : null;
        });
      },
      spans: async (spans) => {
        // One range per block a span covers.
        const ranges: (readonly [string, number, number])[] = [];
        const parts: { span: number; at: number }[] = [];
        spans.forEach((span, i) => {
          const tierMs = tiers[span.tier]!;
          const first = span.from / tierMs;
          for (let idx = first; idx < first + span.count;) {
            const block = Math.floor(idx / B);
            const stop = Math.min(first + span.count - 1, (block + 1) * B - 1);
            const key = keys.block(tierMs, projections[span.projection]!, span.group, block);
            ranges.push([key, (idx - block * B) * cellBytes, (stop - block * B + 1) * cellBytes - 1]);
            parts.push({ span: i, at: (idx - first) * F });
            idx = stop + 1;
          }
        });
        const out = spans.map((span) => new Float64Array(span.count * F));
        (await readRanges(ranges)).forEach((buf, i) => {
          const { span, at } = parts[i]!;
          copyCells(out[span]!, at, buf);
        });
        return out;
      },
      bucketRecords: async (buckets) => {
        const out = new Map<number, Map<string, string>>();
        const big: number[] = [];
        // A bounded script reads a bucket's ids and records in one step; a bucket too big for
        // that is read with SSCAN and HMGET, a bounded command at a time.
        for (let next = 0; next < buckets.length;) {
          const chunk = buckets.slice(next, next + READ_CHUNK);
          const read = await this.redis.livesyncBuckets(
            keys.records,
            BUCKET_RECORDS_PER_CALL,
            ...chunk.map((b) => keys.bucketIndex(b)),
          );
          read.forEach((reply, i) => {
            const bucket = chunk[i]!;
            if (reply === 'big') {
              big.push(bucket);
              return;
            }
            const [ids, forms] = reply;
            const records = new Map<string, string>();
            ids.forEach((id, j) => {
              const form = forms[j];
              if (form) records.set(id, form);
            });
            out.set(bucket, records);
          });
          next += read.length;
        }
        for (const bucket of big) {
          const ids = await this.members(keys.bucketIndex(bucket));
          const forms = await hmget(ids);
          const records = new Map<string, string>();
          ids.forEach((id, j) => {
            const form = forms[j];
            if (form) records.set(id, form);
          });
          out.set(bucket, records);
        }
        return out;
      },
    };
  }

  /**
   * Drops what lies before the retention cutoff, a slice at a time, each slice one guarded
   * piece of commands: records (by the bucket index), then rollup blocks and sketches, whose
   * names follow from the layout, the groups and the time. While a batch's journal is open
   * it does nothing: it runs again after the next sync.
   */
  /** HSCAN over the records hash, READ_CHUNK fields a command, until `count` ids or the end. */
  async scanRecords(dataset: string, cursor: string, count: number): Promise<RecordScan> {
    const { keys } = this.dataset(dataset);
    const records: { id: string }[] = [];
    let next = cursor;
    do {
      const step = Math.min(READ_CHUNK, Math.max(1, count - records.length));
      const [after, flat] = await this.call(() => this.redis.hscan(keys.records, next, 'COUNT', step));
      next = after;
      for (let i = 0; i < flat.length; i += 2) records.push({ id: flat[i]! });
    } while (next !== '0' && records.length < count);
    return { cursor: next, records };
  }

  async trim(dataset: string, cutoffMs: number): Promise<number> {
    const ds = this.dataset(dataset);
    const { keys, spec } = ds;
    const { tiers, projections, blockBuckets: B } = spec.layout;
    const base = tiers[0]!;
    let removed = 0;
    for (;;) {
      const head = await this.head(ds);
      if (!head.gen || head.journal) return removed;
      const [trimmed, oldest] = await this.call(() =>
        Promise.all([
          this.redis.hget(keys.state, 'trimmed'),
          this.redis.zrange(keys.bucketIndexes, 0, 0, 'WITHSCORES'),
        ]),
      );
      const span = base * B;
      // Never trimmed: start where the oldest records held start (nothing older was written).
      const mark =
        trimmed !== null
          ? Number(trimmed)
          : oldest[1]
            ? Math.floor(Number(oldest[1]) / span) * span
            : cutoffMs;

      // Units of commands that go together: a chunk of records, its index entries and the
      // count they change; then an emptied index; then the keys past the cutoff.
      const units: Unit[] = [];
      const indexes = await this.call(() =>
        this.redis.zrangebyscore(keys.bucketIndexes, '-inf', cutoffMs - base, 'LIMIT', 0, TRIM_SLICE),
      );
      let count = 0;
      for (const index of indexes) {
        const ids = await this.call(() => this.members(index));
        for (let i = 0; i < ids.length; i += MAX_ARGS) {
          const chunk = ids.slice(i, i + MAX_ARGS);
          units.push(
            unit(
              ['HDEL', keys.records, ...chunk],
              ['SREM', index, ...chunk],
              ['HINCRBY', keys.state, 'records', String(-chunk.length)],
            ),
          );
        }
        units.push(unit(['DEL', index], ['ZREM', keys.bucketIndexes, index]));
        count += ids.length;
      }
      const upto = Math.min(cutoffMs, mark + TRIM_SLICE * base);
      if (upto > mark) {
        const groups = await this.call(() =>
          Promise.all(projections.map((mask) => this.members(keys.groups(mask)))),
        );
        const doomed: string[] = [];
        for (const size of tiers) {
          const blockMs = size * B;
          for (let block = Math.floor(mark / blockMs); block < Math.floor(upto / blockMs); block++) {
            projections.forEach((mask, pi) => {
              for (const group of groups[pi]!) doomed.push(keys.block(size, mask, group, block));
            });
          }
          for (let bucket = Math.floor(mark / size) * size; bucket + size <= upto; bucket += size) {
            projections.forEach((mask, pi) => {
              for (const group of groups[pi]!) {
                for (let k = 0; k < spec.distinct.length; k++)
                  doomed.push(keys.sketch(size, mask, k, bucket, group));
              }
            });
          }
        }
        for (let i = 0; i < doomed.length; i += MAX_ARGS)
          units.push(unit(['UNLINK', ...doomed.slice(i, i + MAX_ARGS)]));
      }
      units.push(unit(['HSET', keys.state, 'trimmed', String(Math.max(mark, upto))]));
      // Each piece is guarded by the write sequence it expects, so none runs twice.
      let seq = head.seq;
      for (const piece of packUnits(units, this.limits)) {
        const reply = await this.call(() =>
          this.redis.livesyncRun(keys.state, head.gen!, seq, encodePiece(piece)),
        );
        if (reply !== 'ok') return removed;
        seq = String(Number(seq) + 1);
      }
      removed += count;
      if (indexes.length < TRIM_SLICE && upto >= cutoffMs) return removed;
    }
  }

  /** Every member of a set, a bounded SSCAN at a time. */
  private async members(key: string): Promise<string[]> {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await this.redis.sscan(key, cursor, 'COUNT', READ_CHUNK);
      cursor = next;
      out.push(...found);
    } while (cursor !== '0');
    return out;
  }

  async dataStamp(dataset: string, from: number, to: number): Promise<string> {
    const { keys, spec } = this.dataset(dataset);
    const blockMs = spec.resolutionMs * spec.layout.blockBuckets;
    const first = Math.floor(from / blockMs);
    const count = Math.max(0, Math.floor((to - 1) / blockMs) - first + 1);
    const blocks = count > STAMP_MAX_BLOCKS ? [] : Array.from({ length: count }, (_, i) => String(first + i));
    const [[generation, version, journal, jfrom, jto, jnext], versions] = await this.call(() =>
      Promise.all([
        this.redis.hmget(keys.state, 'gen', 'version', 'journal', 'jfrom', 'jto', 'jnext'),
        blocks.length > 0 ? this.redis.hmget(keys.blockVersions, ...blocks) : Promise.resolve([]),
      ]),
    );
    // While a batch's pieces are being applied, its range changes with every piece: the stamp
    // names the piece, so nothing computed meanwhile stays cached past the next one.
    if (journal && Number(jfrom) < to && Number(jto) + spec.resolutionMs > from) {
      return `${generation ?? 'none'}:j${journal}.${jnext ?? 0}`;
    }
    if (count > STAMP_MAX_BLOCKS) return `${generation ?? 'none'}:v${version ?? 0}`;
    const newest = versions.reduce((max, v) => Math.max(max, v === null ? 0 : Number(v)), 0);
    return `${generation ?? 'none'}:${newest}`;
  }

  async readGroups(dataset: string, projection: number): Promise<(string | null)[][]> {
    const { keys, spec } = this.dataset(dataset);
    const size = projectionDimensions(projection, spec.dimensions.length).length;
    const found = await this.call(() => this.members(keys.groups(projection)));
    return found.map((k) => decodeGroup(k, size));
  }

  async readRollups(dataset: string, read: RollupRead): Promise<RollupGroup[]> {
    const { keys, spec } = this.dataset(dataset);
    const { fieldCount: F, blockBuckets: B } = spec.layout;
    const groups = (read.groups ?? (await this.readGroups(dataset, read.projection))).filter(
      (g) => !read.accept || read.accept(g),
    );
    if (groups.length === 0) return [];
    const first = read.from / read.tierMs;
    const count = Math.max(0, Math.ceil((read.to - read.from) / read.tierMs));
    const cellBytes = F * 8;
    const pipeline = this.redis.pipeline();
    const placements: { group: number; at: number }[] = [];
    groups.forEach((values, g) => {
      const group = encodeGroup(values);
      for (let idx = first; idx < first + count;) {
        const block = Math.floor(idx / B);
        const stop = Math.min(first + count - 1, (block + 1) * B - 1);
        const key = keys.block(read.tierMs, read.projection, group, block);
        pipeline.getrangeBuffer(key, (idx - block * B) * cellBytes, (stop - block * B + 1) * cellBytes - 1);
        placements.push({ group: g, at: (idx - first) * F });
        idx = stop + 1;
      }
    });
    // A failed command inside the pipeline is a Redis error too: read the replies in call().
    const buffers = await this.call(async () => replies<Buffer>(await pipeline.exec()));
    const out = groups.map((values) => ({ values, cells: new Float64Array(count * F) }));
    buffers.forEach((buf, i) => {
      const place = placements[i]!;
      copyCells(out[place.group]!.cells, place.at, buf);
    });
    return out.filter((g) => hasData(g.cells, F));
  }

  async countDistinct(dataset: string, read: DistinctRead): Promise<number[]> {
    const { keys } = this.dataset(dataset);
    const groups = read.groups.map(encodeGroup);
    const pipeline = this.redis.pipeline();
    const answered: boolean[] = [];
    for (const [from, to] of read.ranges) {
      const names: string[] = [];
      for (let b = from; b < to; b += read.tierMs) {
        for (const g of groups) names.push(keys.sketch(read.tierMs, read.projection, read.field, b, g));
      }
      answered.push(names.length > 0);
      if (names.length > 0) pipeline.pfcount(...names);
    }
    const counts = await this.call(async () => replies<number>(await pipeline.exec()));
    let next = 0;
    return answered.map((has) => (has ? Number(counts[next++]) : 0));
  }

  async appendEvent(dataset: string, event: SyncEvent): Promise<void> {
    const key = this.dataset(dataset).keys.events;
    await this.call(() =>
      this.redis
        .multi()
        .lpush(key, JSON.stringify(event))
        .ltrim(key, 0, EVENTS_KEPT - 1)
        .exec(),
    );
  }

  async readEvents(dataset: string, from: number, to: number, limit: number): Promise<SyncEvent[]> {
    const raw = await this.call(() => this.redis.lrange(this.dataset(dataset).keys.events, 0, -1));
    const events: SyncEvent[] = [];
    for (const text of raw) {
      const event = JSON.parse(text) as SyncEvent;
      if (event.endedAt >= from && event.startedAt <= to) events.push(event);
      if (events.length >= limit) break;
    }
    return events;
  }

  async appendRegion(dataset: string, region: SyncRegion): Promise<void> {
    const key = this.dataset(dataset).keys.regions;
    await this.call(() =>
      this.redis
        .multi()
        .lpush(key, JSON.stringify(region))
        .ltrim(key, 0, EVENTS_KEPT - 1)
        .exec(),
    );
  }

  async readRegions(dataset: string, from: number, to: number, limit: number): Promise<SyncRegion[]> {
    const raw = await this.call(() => this.redis.lrange(this.dataset(dataset).keys.regions, 0, -1));
    const regions: SyncRegion[] = [];
    for (const text of raw) {
      const region = JSON.parse(text) as SyncRegion;
      if (region.endedAt >= from && region.startedAt <= to) regions.push(region);
      if (regions.length >= limit) break;
    }
    return regions;
  }

  async writeStatus(dataset: string, status: Record<string, unknown>): Promise<void> {
    await this.call(() => this.redis.set(this.dataset(dataset).keys.status, JSON.stringify(status)));
  }

  async readStatus(dataset: string): Promise<Record<string, unknown> | null> {
    const text = await this.call(() => this.redis.get(this.dataset(dataset).keys.status));
    return text ? (JSON.parse(text) as Record<string, unknown>) : null;
  }

  async ping(): Promise<void> {
    await this.call(() => this.redis.ping());
  }

  async close(): Promise<void> {
    if (this.redis.status === 'end') return;
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  /** Runs a Redis call, turning connection trouble into a StoreUnavailableError. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.redis.status !== 'ready') {
      throw new StoreUnavailableError(`Redis is not reachable (connection ${this.redis.status})`);
    }
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StoreError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      if (isConnectionError(err))
        throw new StoreUnavailableError(`Redis is not reachable: ${message}`, { cause: err });
      if (UNAVAILABLE_REPLY.test(message))
        throw new StoreUnavailableError(`Redis cannot serve now: ${message}`, { cause: err });
      throw new StoreError(`Redis: ${message}`, { cause: err });
    }
  }
}

/**
 * Replaces a sketch with one built by `steps` (PFADD or PFMERGE units, key left empty): in
 * place when one step does it, else in a scratch key renamed over it at the end, so that no
 * half-built sketch is ever read.
 */
function rebuild(key: string, steps: Unit[], scratch: string): Unit[] {
  const at = (u: Unit, target: string): Unit => ({
    ops: u.ops.map((op) => [op[0]!, target, ...op.slice(2)]),
    cost: u.cost,
  });
  if (steps.length === 0) return [unit(['DEL', key])];
  if (steps.length === 1) {
    const only = at(steps[0]!, key);
    return [{ ops: [['DEL', key], ...only.ops], cost: only.cost }];
  }
  const [first, ...rest] = steps.map((u) => at(u, scratch));
  return [
    { ops: [['DEL', scratch], ...first!.ops], cost: first!.cost },
    ...rest,
    unit(['RENAME', scratch, key]),
  ];
}

/**
 * PFMERGE steps over sketches, each within a share of a piece. Every PFMERGE walks the
 * 16,384 registers of its result once; a source sketch of a cell with few records is sparse
 * and cheap to read, one with many is dense and costs as much again.
 */
function mergeSteps(sources: { key: string; records: number }[]): Unit[] {
  const steps: Unit[] = [];
  let keys: string[] = [];
  let cost = 0;
  for (const s of sources) {
    const c = s.records >= DENSE_RECORDS ? DENSE_MERGE_COST : 5 + s.records / 8;
    if (keys.length > 0 && (cost + c > MERGE_COST || keys.length >= MAX_ARGS)) {
      steps.push({ ops: [['PFMERGE', '', ...keys]], cost: MERGE_BASE_COST + cost });
      keys = [];
      cost = 0;
    }
    keys.push(s.key);
    cost += c;
  }
  if (keys.length > 0) steps.push({ ops: [['PFMERGE', '', ...keys]], cost: MERGE_BASE_COST + cost });
  return steps;
}

/** The commit: state fields set to absolute values, so that it is the same however often it runs. */
function commitOps(
  keys: DatasetKeys,
  commit: { version: number; records: number; position: Position | null },
): Op[] {
  const fields = ['version', String(commit.version), 'records', String(commit.records)];
  if (commit.position) fields.push('cursor', commit.position.cursor, 'cursorId', commit.position.id);
  return [['HSET', keys.state, ...fields]];
}

function closeOps(keys: DatasetKeys): Op[] {
  return [
    ['HDEL', keys.state, 'journal', 'jready', 'jnext', 'jpieces', 'jfrom', 'jto'],
    ['DEL', keys.journal],
  ];
}

function writeCell(into: Buffer, at: number, value: Float64Array): void {
  for (let i = 0; i < value.length; i++) into.writeDoubleLE(value[i]!, at + i * 8);
}

function readCell(from: Buffer, at: number, F: number): Float64Array {
  const cell = new Float64Array(F);
  copyCells(cell, 0, from.subarray(at, at + F * 8));
  return cell;
}

/** Copies the whole little-endian doubles of `data` into `into` from index `at`. */
function copyCells(into: Float64Array, at: number, data: Buffer): void {
  const whole = data.length - (data.length % 8);
  if (LITTLE_ENDIAN) {
    // One copy into aligned memory, no per-value decoding.
    into.set(new Float64Array(data.buffer.slice(data.byteOffset, data.byteOffset + whole)), at);
  } else {
    for (let j = 0; j < whole; j += 8) into[at + j / 8] = data.readDoubleLE(j);
  }
}

/** The replies of a pipeline, throwing the first error. */
function replies<T>(results: [Error | null, unknown][] | null): T[] {
  return (results ?? []).map(([err, value]) => {
    if (err) throw err;
    return value as T;
  });
}

function hasData(cells: Float64Array, F: number): boolean {
  for (let i = 0; i < cells.length; i += F) if (cells[i]! > 0) return true;
  return false;
}

/**
 * Replies that mean "not now" rather than "never": a script running too long (BUSY), a
 * dataset loading, a failover under way, memory or persistence trouble. Requests answer 503
 * with Retry-After and the sync engine retries, as when the connection is gone.
 */
const UNAVAILABLE_REPLY = /^(BUSY|LOADING|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|MISCONF|OOM|NOREPLICAS)\b/;

function isConnectionError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string };
  return (
    e?.name === 'MaxRetriesPerRequestError' ||
    e?.code === 'ECONNREFUSED' ||
    e?.code === 'ECONNRESET' ||
    e?.code === 'EPIPE' ||
    /Connection is closed|Stream isn't writeable|Command timed out/.test(e?.message ?? '')
  );
}
