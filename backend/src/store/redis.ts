import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Result } from 'ioredis';
import { CELL, projectionDimensions, type DatasetSpec } from '../config/dataset';
import type { Position } from '../sources/types';
import { decodeGroup, encodeGroup } from './groups';
import { heldCursor } from './held';
import { decodeCellBytes, encodeCell } from './redis-cells';
import { closeClient, createRedisClient, pingAll, scanKeys, type RedisClient } from './redis-client';
import { DatasetKeys, recordId, recordSlot } from './redis-keys';
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
  DatasetControl,
  DistinctRead,
  LeaseInfo,
  RecordScan,
  ResyncMark,
  RollupGroup,
  RollupRead,
  Store,
  SyncEvent,
  SyncRegion,
  SyncState,
} from './types';
import { LeaseLostError, STAMP_MAX_BLOCKS, StoreError, StoreUnavailableError } from './types';

const EVENTS_KEPT = 1000;
/**
 * How a dataset's data is laid out; a state of another format (the MessagePack records of
 * the single apply.lua before it, say) reads as no state, and the engine syncs again.
 */
const FORMAT = '3';
/** Base buckets of records, and of time, that one trim slice looks at. */
const TRIM_SLICE = 200;
/** Blocks of base buckets whose records one trim slice looks at. */
const TRIM_BLOCKS = 4;
/** Fields and members per read command (HMGET, SSCAN COUNT): each stays well under a millisecond. */
const READ_CHUNK = 500;
/**
 * Hashes of records per blocks.lua call (at most 64 records each when ids are small integers,
 * a few dozen otherwise), and records per buckets.lua call: each well under a millisecond.
 */
const RECORD_HASHES_PER_CALL = 16;
const BUCKET_RECORDS_PER_CALL = 500;
/**
 * Fields (a record each, or a rollup cell) per fields.lua call: each HGET's reply is copied into Lua and out again, so a call
 * of 500 ran a fraction of a millisecond and could be logged at 20 ms on a busy machine.
 */
const RECORDS_PER_CALL = 128;
/** How much one read command or script call may ask for (tests hold the store to them). */
export const READ_BOUNDS = {
  /** Fields or members per read command (HMGET, SSCAN COUNT), bucket indexes per buckets.lua call. */
  perCommand: READ_CHUNK,
  recordsPerCall: RECORDS_PER_CALL,
  recordHashesPerCall: RECORD_HASHES_PER_CALL,
  bucketRecordsPerCall: BUCKET_RECORDS_PER_CALL,
} as const;
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
  /** The fencing token of the lease this store was granted ('' while it holds none: every fenced write is refused). */
  token: string;
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
    livesyncRun(
      state: string,
      lease: string,
      generation: string,
      seq: string,
      piece: Buffer,
      token: string,
    ): Result<string, Context>;
    livesyncJournal(
      state: string,
      journal: string,
      lease: string,
      mode: 'open' | 'add',
      generation: string,
      seq: string,
      id: string,
      pieces: number,
      from: number,
      to: number,
      first: number,
      ...storedThenToken: (Buffer | string)[]
    ): Result<string, Context>;
    livesyncPiece(state: string, journal: string, id: string, index: number): Result<string, Context>;
    livesyncAbandon(
      state: string,
      journal: string,
      lease: string,
      id: string,
      token: string,
    ): Result<string, Context>;
    livesyncResync(
      state: string,
      lease: string,
      generation: string,
      format: string,
      mark: string,
      token: string,
    ): Result<number | 'fenced', Context>;
    livesyncFenced(lease: string, piece: Buffer, token: string): Result<string, Context>;
    livesyncLease(
      lease: string,
      counter: string,
      mode: 'acquire' | 'renew' | 'release',
      holderOrToken: string,
      ttlMs: number,
    ): Result<number | [number, string, number, number], Context>;
    livesyncBlocks(state: string, ...keys: string[]): Result<string[][], Context>;
    livesyncBuckets(
      state: string,
      limit: number,
      ...indexes: string[]
    ): Result<(string[] | 'big')[], Context>;
    livesyncFields(state: string, ...pairs: string[]): Result<(string | null)[], Context>;
    livesyncFieldsBuffer(state: string, ...pairs: string[]): Result<(Buffer | null)[], Context>;
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

export class RedisStore implements Store {
  readonly kind = 'redis';
  private readonly datasets = new Map<string, Registered>();
  private readonly limits: PieceLimits;
  private readonly onStep: RedisStoreOptions['onStep'];
  /**
   * Per dataset, the generation and write sequence after this store's last committed batch.
   * Redis replicates asynchronously: after a failover (or a restart from an older snapshot) a
   * dataset may come back in an earlier state, consistent but behind what was committed here.
   * A batch planned on it would carry the engine on from a position the store no longer
   * holds, skipping the rows between; it is refused as a conflict instead, and the engine
   * reads on from the position the store holds.
   */
  private readonly committed = new Map<string, { gen: string; seq: number }>();

  constructor(
    readonly redis: RedisClient,
    private readonly root: string,
    options: RedisStoreOptions = {},
  ) {
    this.limits = { ...PIECE_LIMITS, ...options.pieceLimits };
    this.onStep = options.onStep;
    // Fenced scripts (fence.lua) take the lease hash as their last key and the token as their last argument.
    redis.defineCommand('livesyncRun', { numberOfKeys: 2, lua: script('run.lua') });
    redis.defineCommand('livesyncJournal', { numberOfKeys: 3, lua: script('journal.lua') });
    redis.defineCommand('livesyncPiece', { numberOfKeys: 2, lua: script('piece.lua') });
    redis.defineCommand('livesyncAbandon', { numberOfKeys: 3, lua: script('abandon.lua') });
    redis.defineCommand('livesyncBlocks', { numberOfKeys: 1, lua: script('blocks.lua') });
    redis.defineCommand('livesyncBuckets', { numberOfKeys: 1, lua: script('buckets.lua') });
    redis.defineCommand('livesyncFenced', { numberOfKeys: 1, lua: script('fenced.lua') });
    redis.defineCommand('livesyncFields', { numberOfKeys: 1, lua: script('fields.lua') });
    redis.defineCommand('livesyncLease', { numberOfKeys: 2, lua: script('lease.lua') });
    redis.defineCommand('livesyncResync', { numberOfKeys: 2, lua: script('resync.lua') });
  }

  /** Connects (to one server or a cluster) and waits until Redis answers, so start-up fails loudly on a wrong URL. */
  static async connect(url: string, prefix: string, options: RedisStoreOptions = {}): Promise<RedisStore> {
    const redis = createRedisClient(url);
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
    const known = this.datasets.get(spec.name);
    this.datasets.set(spec.name, {
      spec,
      keys: new DatasetKeys(this.root, spec.name),
      token: known?.token ?? '',
    });
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
    const ds = this.dataset(dataset);
    const { keys } = ds;
    const mark = resync ? JSON.stringify(resync) : '';
    const reply = await this.call(() =>
      this.redis.livesyncResync(keys.state, keys.lease, generation, FORMAT, mark, ds.token),
    );
    return this.unfenced(ds, reply) === 1;
  }

  async resetDataset(dataset: string, resync?: ResyncMark): Promise<SyncState> {
    const ds = this.dataset(dataset);
    const { keys } = ds;
    const kept = new Set(keys.keptOnReset);
    await this.call(() =>
      scanKeys(this.redis, `${keys.prefix}*`, async (found) => {
        const doomed = found.filter((k) => !kept.has(k));
        for (let i = 0; i < doomed.length; i += MAX_ARGS)
          await this.fenced(ds, [['UNLINK', ...doomed.slice(i, i + MAX_ARGS)]]);
      }),
    );
    const generation = randomUUID();
    const fields = {
      gen: generation,
      format: FORMAT,
      version: 0,
      records: 0,
      seq: 0,
      ...(resync ? { resync: JSON.stringify(resync) } : {}),
    };
    await this.fenced(ds, [['HSET', keys.state, ...Object.entries(fields).flat().map(String)]]);
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
    const last = this.committed.get(dataset);
    if (last && last.gen === head.gen && Number(head.seq) < last.seq) {
      this.committed.delete(dataset);
      return { applied: false, reason: 'conflict' };
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
    this.committed.set(dataset, { gen: head.gen, seq: Number(head.seq) + 1 });
    return result;
  }

  /**
   * The commands that write a plan, as units that must each run within one piece, in the
   * order they must run (finer sketches before the merges that read them).
   */
  private dataOps({ spec, keys }: Registered, plan: Plan, version: number): Unit[] {
    const { tiers, projections, blockBuckets: B } = spec.layout;
    const base = tiers[0]!;
    const ops: Op[] = [];

    const writes = new Map<string, string[]>();
    const removals = new Map<string, string[]>();
    const adds = new Map<number, string[]>();
    const removes = new Map<number, string[]>();
    const push = (map: Map<number, string[]>, bucket: number, id: string) => {
      const list = map.get(bucket);
      if (list) list.push(id);
      else map.set(bucket, [id]);
    };
    const slots = new Set<string>();
    for (const c of plan.changes) {
      const { slot, field } = recordSlot(c.id);
      if (c.encoded) {
        pushAll(writes, keys.records(slot), field, c.encoded);
        slots.add(slot);
      } else pushAll(removals, keys.records(slot), field);
      const from = c.before && Math.floor(c.before.time / base) * base;
      const to = c.after && Math.floor(c.after.time / base) * base;
      if (from === to) continue;
      if (from !== null) push(removes, from, c.id);
      if (to !== null) push(adds, to, c.id);
    }
    for (const [key, items] of writes)
      ops.push(...chunked('HSET', key, items, MAX_ARGS, { maxBytes: HSET_BYTES, stride: 2 }));
    ops.push(...chunked('SADD', keys.recordSlots, [...slots]));
    for (const [key, fields] of removals) ops.push(...chunked('HDEL', key, fields));
    for (const [bucket, ids] of removes) ops.push(...chunked('SREM', keys.bucketIndex(bucket), ids));
    const span = base * B;
    const indexBlocks = new Set<number>();
    for (const [bucket, ids] of adds) {
      ops.push(...chunked('SADD', keys.bucketIndex(bucket), ids));
      indexBlocks.add(Math.floor(bucket / span) * span);
    }
    for (const start of indexBlocks) ops.push(['ZADD', keys.bucketIndexes, String(start), String(start)]);

    // Cells: one HSET of the cells that hold records and one HDEL of the emptied ones per block.
    const M = spec.metrics.length;
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
      const set: string[] = [];
      const emptied: string[] = [];
      for (const { slot, value } of cells) {
        if (value[CELL.count]! > 0) set.push(String(slot), encodeCell(value, M));
        else emptied.push(String(slot));
      }
      if (set.length > 0) ops.push(['HSET', key, ...set]);
      if (emptied.length > 0) ops.push(['HDEL', key, ...emptied]);
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
      const reply = await this.runPiece(ds, head.gen!, head.seq, [...(dataPieces[0] ?? []), ...commit]);
      return reply === 'ok' ? 'ok' : reply === 'lost' ? 'lost' : 'conflict';
    }
    // The last piece commits and closes the journal, all at once.
    const pieces = [...dataPieces, [...commit, ...closeOps(keys)]].map((p) => encodePiece(p, keys.prefix));
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
          keys.lease,
          first === 0 ? 'open' : 'add',
          head.gen!,
          head.seq,
          id,
          pieces.length,
          from,
          to,
          first,
          ...pieces.slice(first, last + 1),
          ds.token,
        ),
      );
      this.unfenced(ds, reply);
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
    else
      this.unfenced(
        ds,
        await this.call(() =>
          this.redis.livesyncAbandon(ds.keys.state, ds.keys.journal, ds.keys.lease, head.journal!, ds.token),
        ),
      );
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
    const M = spec.metrics.length;
    const hmget = (ids: string[]) => this.readRecords(keys, ids);
    return {
      records: hmget,
      cells: async (refs) => {
        const where = refs.map((ref) => {
          const idx = ref.bucket / tiers[ref.tier]!;
          const block = Math.floor(idx / B);
          const key = keys.block(tiers[ref.tier]!, projections[ref.projection]!, ref.group, block);
          return { key, slot: idx - block * B };
        });
        // One field each (a batch touches few cells of most blocks it reaches), as bytes.
        const found = await this.readFields(
          keys,
          where.flatMap(({ key, slot }) => [key, String(slot)]),
          true,
        );
        return found.map((bytes) => {
          if (bytes === null) return null;
          const cell = new Float64Array(F);
          decodeCellBytes(bytes, 0, bytes.length, M, cell, 0);
          return cell[CELL.count]! > 0 ? cell : null;
        });
      },
      spans: async (spans) => {
        // The blocks a span covers, whole (a block is at most B cells).
        const parts: { span: number; key: string; lo: number; hi: number; at: number }[] = [];
        spans.forEach((span, i) => {
          const tierMs = tiers[span.tier]!;
          const first = span.from / tierMs;
          for (let idx = first; idx < first + span.count;) {
            const block = Math.floor(idx / B);
            const stop = Math.min(first + span.count - 1, (block + 1) * B - 1);
            const key = keys.block(tierMs, projections[span.projection]!, span.group, block);
            parts.push({ span: i, key, lo: idx - block * B, hi: stop - block * B, at: (idx - first) * F });
            idx = stop + 1;
          }
        });
        const out = spans.map((span) => new Float64Array(span.count * F));
        const blocks = await this.readBlocks(parts.map((p) => p.key));
        for (const p of parts) placeCells(blocks.get(p.key)!, p.lo, p.hi, M, F, out[p.span]!, p.at);
        return out;
      },
      bucketRecords: async (buckets) => {
        const out = new Map<number, Map<string, string>>();
        const listed = await this.listBuckets(keys, buckets);
        const forms = await hmget(listed.flatMap((l) => l.ids));
        let at = 0;
        for (const { bucket, ids } of listed) {
          const records = new Map<string, string>();
          for (const id of ids) {
            const form = forms[at++];
            if (form) records.set(id, form);
          }
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
        Promise.all([this.redis.hget(keys.state, 'trimmed'), this.redis.zrange(keys.bucketIndexes, 0, 0)]),
      );
      const span = base * B;
      // Never trimmed: start where the oldest records held start (nothing older was written).
      const mark = trimmed !== null ? Number(trimmed) : oldest[0] ? Number(oldest[0]) : cutoffMs;

      // Units of commands that go together: a chunk of records, its index entries and the
      // count they change; then a block of indexes emptied; then the keys past the cutoff.
      const units: Unit[] = [];
      // The blocks of base buckets that hold indexes, oldest first; the buckets of each that
      // lie wholly before the cutoff go, and the block with them once all of its buckets do.
      const blocks = await this.call(() =>
        this.redis.zrangebyscore(keys.bucketIndexes, '-inf', cutoffMs - base, 'LIMIT', 0, TRIM_BLOCKS),
      );
      let count = 0;
      const trimmedSlots = new Set<string>();
      for (const start of blocks.map(Number)) {
        const buckets: number[] = [];
        for (let b = start; b < start + span && b + base <= cutoffMs; b += base) buckets.push(b);
        for (const { bucket, ids } of await this.listBuckets(keys, buckets)) {
          const index = keys.bucketIndex(bucket);
          for (let i = 0; i < ids.length; i += MAX_ARGS) {
            const chunk = ids.slice(i, i + MAX_ARGS);
            const bySlot = new Map<string, string[]>();
            for (const id of chunk) {
              const { slot, field } = recordSlot(id);
              pushAll(bySlot, keys.records(slot), field);
              trimmedSlots.add(slot);
            }
            units.push(
              unit(
                ...[...bySlot].map(([key, fields]): Op => ['HDEL', key, ...fields]),
                ['SREM', index, ...chunk],
                ['HINCRBY', keys.state, 'records', String(-chunk.length)],
              ),
            );
          }
          count += ids.length;
        }
        if (start + span <= cutoffMs) units.push(unit(['ZREM', keys.bucketIndexes, String(start)]));
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
        const reply = await this.runPiece(ds, head.gen!, seq, piece);
        if (reply !== 'ok') return removed;
        seq = String(Number(seq) + 1);
      }
      // Slots left without records leave the list of slots, unless a write came in between.
      const touched = [...trimmedSlots];
      const exists = await this.call(async () => {
        const pipeline = this.redis.pipeline();
        for (const slot of touched) pipeline.exists(keys.records(slot));
        return replies<number>(await pipeline.exec());
      });
      const emptied = touched.filter((_, i) => exists[i] === 0);
      for (const op of chunked('SREM', keys.recordSlots, emptied)) {
        const reply = await this.runPiece(ds, head.gen!, seq, [op]);
        if (reply !== 'ok') return removed + count;
        seq = String(Number(seq) + 1);
      }
      removed += count;
      if (blocks.length < TRIM_BLOCKS && upto >= cutoffMs) return removed;
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
    const M = spec.metrics.length;
    const placements: { group: number; key: string; lo: number; hi: number; at: number }[] = [];
    groups.forEach((values, g) => {
      const group = encodeGroup(values);
      for (let idx = first; idx < first + count;) {
        const block = Math.floor(idx / B);
        const stop = Math.min(first + count - 1, (block + 1) * B - 1);
        const key = keys.block(read.tierMs, read.projection, group, block);
        placements.push({ group: g, key, lo: idx - block * B, hi: stop - block * B, at: (idx - first) * F });
        idx = stop + 1;
      }
    });
    const blocks = await this.readBlocks(placements.map((p) => p.key));
    const out = groups.map((values) => ({ values, cells: new Float64Array(count * F) }));
    for (const p of placements) placeCells(blocks.get(p.key)!, p.lo, p.hi, M, F, out[p.group]!.cells, p.at);
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
    const ds = this.dataset(dataset);
    await this.fenced(ds, pushCapped(ds.keys.events, event));
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
    const ds = this.dataset(dataset);
    await this.fenced(ds, pushCapped(ds.keys.regions, region));
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
    const ds = this.dataset(dataset);
    await this.fenced(ds, [['SET', ds.keys.status, JSON.stringify(status)]]);
  }

  async readStatus(dataset: string): Promise<Record<string, unknown> | null> {
    const text = await this.call(() => this.redis.get(this.dataset(dataset).keys.status));
    return text ? (JSON.parse(text) as Record<string, unknown>) : null;
  }

  async acquireLease(
    dataset: string,
    holder: string,
    ttlMs: number,
  ): Promise<LeaseInfo & { granted: boolean }> {
    const ds = this.dataset(dataset);
    const reply = await this.call(() =>
      this.redis.livesyncLease(ds.keys.lease, ds.keys.fence, 'acquire', holder, ttlMs),
    );
    const [granted, owner, token, ttl] = reply as [number, string, number, number];
    ds.token = granted === 1 ? String(token) : '';
    return { granted: granted === 1, holder: owner, token, ttlMs: Math.max(0, ttl) };
  }

  async renewLease(dataset: string, ttlMs: number): Promise<boolean> {
    const ds = this.dataset(dataset);
    if (ds.token === '') return false;
    const held = ds.token;
    const reply = await this.call(() =>
      this.redis.livesyncLease(ds.keys.lease, ds.keys.fence, 'renew', held, ttlMs),
    );
    if (reply === 1) return true;
    if (ds.token === held) ds.token = '';
    return false;
  }

  async releaseLease(dataset: string): Promise<void> {
    const ds = this.dataset(dataset);
    const held = ds.token;
    ds.token = '';
    if (held !== '')
      await this.call(() => this.redis.livesyncLease(ds.keys.lease, ds.keys.fence, 'release', held, 0));
  }

  async readLease(dataset: string): Promise<LeaseInfo | null> {
    const { keys } = this.dataset(dataset);
    const [[holder, token], ttl] = await this.call(() =>
      Promise.all([this.redis.hmget(keys.lease, 'holder', 'token'), this.redis.pttl(keys.lease)]),
    );
    if (!holder || !token) return null;
    return { holder, token: Number(token), ttlMs: Math.max(0, ttl) };
  }

  async readControl(dataset: string): Promise<DatasetControl> {
    const { keys } = this.dataset(dataset);
    const [paused, resync, resumed] = await this.call(() =>
      this.redis.hmget(keys.control, 'paused', 'resync', 'resumed'),
    );
    const parse = (text: string | null | undefined) =>
      text ? (JSON.parse(text) as { at: number; by: string }) : null;
    return { paused: parse(paused), resync: parse(resync), resumed: parse(resumed) };
  }

  async writeControl<K extends keyof DatasetControl>(
    dataset: string,
    name: K,
    value: DatasetControl[K],
  ): Promise<void> {
    const { keys } = this.dataset(dataset);
    await this.call(() =>
      value === null
        ? this.redis.hdel(keys.control, name)
        : this.redis.hset(keys.control, name, JSON.stringify(value)),
    );
  }

  async clearResyncRequest(dataset: string): Promise<void> {
    const ds = this.dataset(dataset);
    await this.fenced(ds, [['HDEL', ds.keys.control, 'resync']]);
  }

  async ping(): Promise<void> {
    await this.call(() => pingAll(this.redis));
  }

  async close(): Promise<void> {
    await closeClient(this.redis);
  }

  /**
   * The ids in base buckets' indexes: a bounded script lists those of many buckets at once; a
   * bucket too big for that is listed with SSCAN, a bounded command at a time.
   */
  private async listBuckets(
    keys: DatasetKeys,
    buckets: number[],
  ): Promise<{ bucket: number; ids: string[] }[]> {
    const listed: { bucket: number; ids: string[] }[] = [];
    const big: number[] = [];
    for (let next = 0; next < buckets.length;) {
      const chunk = buckets.slice(next, next + READ_CHUNK);
      const read = await this.call(() =>
        this.redis.livesyncBuckets(
          keys.state,
          BUCKET_RECORDS_PER_CALL,
          ...chunk.map((b) => keys.bucketIndex(b)),
        ),
      );
      read.forEach((reply, i) => {
        if (reply === 'big') big.push(chunk[i]!);
        else listed.push({ bucket: chunk[i]!, ids: reply });
      });
      next += read.length;
    }
    for (const bucket of big)
      listed.push({ bucket, ids: await this.call(() => this.members(keys.bucketIndex(bucket))) });
    return listed;
  }

  /** Stored forms of records by id (null where none is held). */
  private readRecords(keys: DatasetKeys, ids: string[]): Promise<(string | null)[]> {
    const pairs: string[] = [];
    for (const id of ids) {
      const { slot, field } = recordSlot(id);
      pairs.push(keys.records(slot), field);
    }
    return this.readFields(keys, pairs);
  }

  /**
   * One field of each hash (key, field, key, field…; null where none), as text or as the
   * reply's bytes, a bounded script call per RECORDS_PER_CALL pairs.
   */
  private readFields(keys: DatasetKeys, pairs: string[], bytes: true): Promise<(Buffer | null)[]>;
  private readFields(keys: DatasetKeys, pairs: string[]): Promise<(string | null)[]>;
  private async readFields(
    keys: DatasetKeys,
    pairs: string[],
    bytes = false,
  ): Promise<(string | Buffer | null)[]> {
    const pipeline = this.redis.pipeline();
    for (let i = 0; i < pairs.length; i += 2 * RECORDS_PER_CALL) {
      const chunk = pairs.slice(i, i + 2 * RECORDS_PER_CALL);
      if (bytes) pipeline.livesyncFieldsBuffer(keys.state, ...chunk);
      else pipeline.livesyncFields(keys.state, ...chunk);
    }
    return replies<(string | Buffer | null)[]>(await pipeline.exec()).flat();
  }

  async scanRecords(dataset: string, cursor: string, count: number): Promise<RecordScan> {
    const { keys, spec } = this.dataset(dataset);
    // A hash of records holds up to 64 of them (more where ids are not small integers). SSCAN's
    // COUNT is a hint that a small set ignores (it answers whole): the slots a reply brings
    // beyond this step's share wait in the returned cursor, `<sscan cursor>,<slot>,<slot>…`.
    // The step stays bounded however large a page is asked for (count is a hint, as for SCAN).
    const share = Math.min(READ_CHUNK, Math.max(1, Math.ceil(count / 64)));
    let [scan = '0', ...pending] = cursor.split(',');
    if (pending.length === 0) {
      [scan, pending] = await this.call(() => this.redis.sscan(keys.recordSlots, scan, 'COUNT', share));
    }
    const slots = pending.slice(0, share);
    const next = [scan, ...pending.slice(share)].join(',');
    const found = slots.map((slot) => keys.records(slot));
    // Fields and values as flat arrays (an id may be any string, "__proto__" too).
    const hashes = await this.call(async () => {
      const pipeline = this.redis.pipeline();
      for (let i = 0; i < found.length; i += RECORD_HASHES_PER_CALL)
        pipeline.livesyncBlocks(keys.state, ...found.slice(i, i + RECORD_HASHES_PER_CALL));
      return replies<string[][]>(await pipeline.exec()).flat();
    });
    const records: RecordScan['records'] = [];
    const start = keys.records('').length;
    found.forEach((key, i) => {
      const slot = key.slice(start);
      const flat = hashes[i]!;
      for (let j = 0; j < flat.length; j += 2) {
        records.push({ id: recordId(slot, flat[j]!), cursor: heldCursor(flat[j + 1]!, spec) });
      }
    });
    return { cursor: next, records };
  }

  /**
   * Rollup blocks by key (each key once), as HGETALL answers them: slot, cell, slot, cell …
   * as bytes (empty for a missing block). One HGETALL per block, pipelined: a block holds at
   * most blockBuckets cells, so each command is a few microseconds of Redis, where a script
   * reading several costs Redis several times as much (every reply is copied into Lua and
   * out again). Bytes rather than strings: placeCells decodes them without making any.
   */
  private async readBlocks(wanted: string[]): Promise<Map<string, Buffer[]>> {
    const order = [...new Set(wanted)];
    const read = await this.call(async () => {
      const pipeline = this.redis.pipeline();
      for (const key of order) pipeline.callBuffer('HGETALL', key);
      return replies<Buffer[]>(await pipeline.exec());
    });
    return new Map(order.map((key, i) => [key, read[i]!]));
  }

  /**
   * One piece of commands run whole by run.lua, guarded by the generation, the write sequence
   * `seq` the caller read and the lease: 'ok', or what the guard found instead ('lost', 'busy',
   * 'moved'); LeaseLostError when the lease is another's.
   */
  private async runPiece(ds: Registered, generation: string, seq: string, ops: Op[]): Promise<string> {
    const { keys } = ds;
    const piece = encodePiece(ops, keys.prefix);
    return this.unfenced(
      ds,
      await this.call(() => this.redis.livesyncRun(keys.state, keys.lease, generation, seq, piece, ds.token)),
    );
  }

  /** Runs commands under the lease guard alone (fenced.lua). */
  private async fenced(ds: Registered, ops: Op[]): Promise<void> {
    const piece = encodePiece(ops, ds.keys.prefix);
    this.unfenced(ds, await this.call(() => this.redis.livesyncFenced(ds.keys.lease, piece, ds.token)));
  }

  /** A fenced script's reply, or LeaseLostError when the lease guard refused it (and the token is forgotten). */
  private unfenced<T>(ds: Registered, reply: T): T {
    if (reply !== 'fenced') return reply;
    ds.token = '';
    throw new LeaseLostError(ds.spec.name);
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

/** Appends items to the list of a key. */
function pushAll<K>(map: Map<K, string[]>, key: K, ...items: string[]): void {
  const list = map.get(key);
  if (list) list.push(...items);
  else map.set(key, items);
}

/** Pushes a record (JSON) onto a capped list, newest first. */
function pushCapped(key: string, record: SyncEvent | SyncRegion): Op[] {
  return [
    ['LPUSH', key, JSON.stringify(record)],
    ['LTRIM', key, '0', String(EVENTS_KEPT - 1)],
  ];
}

/**
 * Decodes the cells of slots lo..hi of a block (readBlocks' flat slot, cell … bytes) into
 * `into`, slot lo at index `at`; missing cells stay zero.
 */
function placeCells(
  block: Buffer[],
  lo: number,
  hi: number,
  M: number,
  F: number,
  into: Float64Array,
  at: number,
): void {
  for (let j = 0; j < block.length; j += 2) {
    const slot = readSlot(block[j]!);
    const cell = block[j + 1]!;
    if (slot >= lo && slot <= hi) decodeCellBytes(cell, 0, cell.length, M, into, at + (slot - lo) * F);
  }
}

/** A block's field: its slot, a small decimal integer. */
function readSlot(field: Buffer): number {
  let slot = 0;
  for (let i = 0; i < field.length; i++) slot = slot * 10 + field[i]! - 48;
  return slot;
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
    /Connection is closed|Stream isn't writeable|Command timed out|Cluster isn't ready|Too many Cluster redirections|Failed to refresh slots cache/.test(
      e?.message ?? '',
    )
  );
}
