/**
 * Commands for Redis, cut into pieces that each run as one short script (lua/ops.lua): a
 * batch of any size becomes as many pieces as it needs, so that Redis, which runs one
 * script at a time and nothing else meanwhile, never stalls its other clients for long.
 */

/** One command: [name, key, arguments...]. */
export type Op = (string | Buffer)[];

export interface PieceLimits {
  /** Estimated cost of one piece, in units of about a microsecond of Redis time. */
  cost: number;
  /** Bytes of one piece. */
  bytes: number;
}

/**
 * Measured with SLOWLOG on the development machine (2 cores, Redis 7.0, busy with other
 * work) over the 4-dimension workload: pieces take 0.25 ms at the median, 1.8 ms at the
 * 99th percentile, 5.5 ms at most: room under the 10 ms that no command may exceed. Fewer,
 * larger pieces would save round trips; smaller ones would leave more room.
 */
export const PIECE_LIMITS: PieceLimits = { cost: 2_000, bytes: 256 * 1024 };

/** Arguments per command: Lua's unpack() and Redis's argument parsing both like them few. */
export const MAX_ARGS = 512;

/**
 * Estimated Redis time of a command, from what it does per argument (measured with SLOWLOG
 * on Redis 7.0): a call from Lua costs a few microseconds; a PFADD value a few (a sparse
 * sketch moves bytes; one may turn dense); a PFMERGE source up to about a hundred (a dense
 * sketch is 16,384 registers to read).
 */
export function opCost(op: Op): number {
  const name = op[0] as string;
  const args = op.length - 2;
  let bytes = 0;
  for (let i = 2; i < op.length; i++) bytes += op[i]!.length;
  let perArg = 0.4;
  if (name === 'PFADD') perArg = 4;
  else if (name === 'PFMERGE') perArg = 400;
  return 3 + args * perArg + bytes / 256;
}

/** `name key items...`, as several commands when there are many items (or many bytes of them). */
export function chunked(
  name: string,
  key: string,
  items: readonly (string | Buffer)[],
  per = MAX_ARGS,
  options: { maxBytes?: number; stride?: number } = {},
): Op[] {
  // `stride` items go together (2 for HSET's field and value): a chunk never splits them.
  const { maxBytes = Infinity, stride = 1 } = options;
  const out: Op[] = [];
  let current: Op = [name, key];
  let bytes = 0;
  for (let i = 0; i < items.length; i += stride) {
    const entry = items.slice(i, i + stride);
    const size = entry.reduce((n, item) => n + item.length, 0);
    if (current.length > 2 && (current.length - 2 + stride > per || bytes + size > maxBytes)) {
      out.push(current);
      current = [name, key];
      bytes = 0;
    }
    current.push(...entry);
    bytes += size;
  }
  if (current.length > 2) out.push(current);
  return out;
}

/**
 * Commands that must be applied together (a removal and the count it changes, a sketch and
 * the rename that publishes it), with their estimated cost when opCost cannot know it (a
 * PFMERGE of sources known to be small).
 */
export interface Unit {
  ops: Op[];
  cost?: number;
}

export const unit = (...ops: Op[]): Unit => ({ ops });

/** Groups units into pieces within the limits, never splitting one; a piece holds at least one unit. */
export function packUnits(units: readonly Unit[], limits: PieceLimits = PIECE_LIMITS): Op[][] {
  const pieces: Op[][] = [];
  let current: Op[] = [];
  let cost = 0;
  let bytes = 0;
  for (const u of units) {
    let c = 0;
    let b = 0;
    for (const op of u.ops) {
      c += opCost(op);
      b += opBytes(op);
    }
    if (u.cost !== undefined) c = u.cost;
    if (current.length > 0 && (cost + c > limits.cost || bytes + b > limits.bytes)) {
      pieces.push(current);
      current = [];
      cost = 0;
      bytes = 0;
    }
    current.push(...u.ops);
    cost += c;
    bytes += b;
  }
  if (current.length > 0) pieces.push(current);
  return pieces;
}

function opBytes(op: Op): number {
  let bytes = 0;
  for (const part of op) bytes += part.length + 5;
  return bytes;
}

/** Commands a piece may hold whose every argument is a key (RENAME's two, PFMERGE's target and sources). */
const KEYS_ONLY = new Set(['DEL', 'UNLINK', 'PFMERGE', 'RENAME']);
/** Commands a piece may hold that name one key, their first argument. */
const ONE_KEY = new Set(
  'HSET HSETNX HDEL HINCRBY HINCRBYFLOAT SADD SREM ZADD ZREM ZREMRANGEBYSCORE SET SETRANGE APPEND PFADD LPUSH RPUSH LTRIM INCRBY PEXPIRE'.split(
    ' ',
  ),
);

/**
 * Throws unless every key the ops name starts with `prefix`, a dataset's, which ends in its
 * hash tag (redis-keys.ts). The script that runs a piece declares the dataset's state hash as
 * its key; this makes every other key it touches provably in the same Redis Cluster slot.
 */
export function assertKeysUnder(ops: readonly Op[], prefix: string): void {
  for (const op of ops) {
    const name = String(op[0]);
    const keys = KEYS_ONLY.has(name) ? op.slice(1) : ONE_KEY.has(name) ? op.slice(1, 2) : null;
    if (!keys)
      throw new Error(
        `a piece cannot run ${name}: redis-pieces.ts does not know which of its arguments are keys`,
      );
    for (const key of keys) {
      if (typeof key !== 'string' || !key.startsWith(prefix)) {
        throw new Error(
          `a piece of ${prefix}* names ${name} on a key outside the dataset: ${String(key).slice(0, 80)}`,
        );
      }
    }
  }
}

/**
 * A piece as lua/ops.lua reads it: a MessagePack array of arrays of strings, in one buffer.
 * Every key it names must be under `prefix` (see assertKeysUnder).
 */
export function encodePiece(ops: readonly Op[], prefix: string): Buffer {
  assertKeysUnder(ops, prefix);
  let size = 5;
  for (const op of ops) {
    size += 5;
    for (const part of op) size += 5 + (typeof part === 'string' ? part.length * 3 : part.length);
  }
  const out = Buffer.allocUnsafe(size);
  let at = arrayHeader(out, 0, ops.length);
  for (const op of ops) {
    at = arrayHeader(out, at, op.length);
    for (const part of op) {
      // A header wide enough for the most bytes the part can take, then its real length.
      const most = typeof part === 'string' ? part.length * 3 : part.length;
      const head = most < 32 ? 1 : most < 0x100 ? 2 : most < 0x10000 ? 3 : 5;
      const n = typeof part === 'string' ? out.write(part, at + head) : part.copy(out, at + head);
      stringHeader(out, at, n, head);
      at += head + n;
    }
  }
  return out.subarray(0, at);
}

function arrayHeader(out: Buffer, at: number, n: number): number {
  if (n < 16) {
    out[at] = 0x90 | n;
    return at + 1;
  }
  if (n < 0x10000) {
    out[at] = 0xdc;
    out.writeUInt16BE(n, at + 1);
    return at + 3;
  }
  out[at] = 0xdd;
  out.writeUInt32BE(n, at + 1);
  return at + 5;
}

/**
 * A MessagePack str header of `head` bytes (fixstr, str8, str16, str32) for `n` bytes; Redis's
 * cmsgpack reads any bytes in a str, binary included, under a header wider than needed too.
 */
function stringHeader(out: Buffer, at: number, n: number, head: number): void {
  if (head === 1) out[at] = 0xa0 | n;
  else if (head === 2) {
    out[at] = 0xd9;
    out[at + 1] = n;
  } else if (head === 3) {
    out[at] = 0xda;
    out.writeUInt16BE(n, at + 1);
  } else {
    out[at] = 0xdb;
    out.writeUInt32BE(n, at + 1);
  }
}
