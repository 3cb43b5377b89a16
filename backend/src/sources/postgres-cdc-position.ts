import type { Position } from './types';

/**
 * Where a change-data-capture copy stands, carried in the engine's Position (cursor, id) and
 * committed with every batch like a polling cursor.
 *
 * - `snapshot`: the initial copy of the table, consistent with the slot's start `slotLsn`:
 *   `rows` read so far, up to the primary key `key` (keyset order). The stream starts at
 *   `slotLsn` once the copy is done.
 * - `stream`: every transaction whose commit ends at or before `lsn` is applied. `partial`,
 *   when set, says that the first `changes` changes of the next transaction (the one whose
 *   commit record is at `commitLsn`) are applied too: a transaction larger than a batch is
 *   committed in several batches, and a restart skips exactly what is held.
 */
export type CdcPosition =
  | { phase: 'snapshot'; slotLsn: bigint; rows: number; key: string }
  | { phase: 'stream'; lsn: bigint; partial: { commitLsn: bigint; changes: number } | null };

const SNAPSHOT = 'snapshot@';

/** PostgreSQL's text form of an LSN (`16/B374D848`) as a number. */
export function parseLsn(text: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!match) throw new Error(`"${text}" is not an LSN`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function encodePosition(position: CdcPosition): Position {
  if (position.phase === 'snapshot') {
    return { cursor: `${SNAPSHOT}${formatLsn(position.slotLsn)}`, id: `${position.rows}:${position.key}` };
  }
  const { partial } = position;
  return {
    cursor: formatLsn(position.lsn),
    id: partial ? `${formatLsn(partial.commitLsn)}+${partial.changes}` : '0',
  };
}

/** The inverse of encodePosition; anything else (a polling cursor left by an earlier mode) is an error. */
export function decodePosition(position: Position): CdcPosition {
  const { cursor, id } = position;
  if (cursor.startsWith(SNAPSHOT)) {
    const colon = id.indexOf(':');
    const rows = Number(id.slice(0, colon));
    if (colon < 0 || !Number.isSafeInteger(rows)) throw new Error(`"${id}" is not a snapshot position`);
    return {
      phase: 'snapshot',
      slotLsn: parseLsn(cursor.slice(SNAPSHOT.length)),
      rows,
      key: id.slice(colon + 1),
    };
  }
  const lsn = parseLsn(cursor);
  if (id === '0') return { phase: 'stream', lsn, partial: null };
  const match = /^([0-9A-F]+\/[0-9A-F]+)\+(\d+)$/.exec(id);
  if (!match) throw new Error(`"${id}" is not a stream position`);
  return { phase: 'stream', lsn, partial: { commitLsn: parseLsn(match[1]!), changes: Number(match[2]) } };
}

/** The snapshot comes before the stream; within each, positions follow the order they are read in. */
export function comparePositions(a: CdcPosition, b: CdcPosition): number {
  if (a.phase !== b.phase) return a.phase === 'snapshot' ? -1 : 1;
  if (a.phase === 'snapshot' && b.phase === 'snapshot') return sign(a.slotLsn - b.slotLsn) || a.rows - b.rows;
  if (a.phase === 'stream' && b.phase === 'stream') {
    return (
      sign(a.lsn - b.lsn) ||
      sign((a.partial?.commitLsn ?? 0n) - (b.partial?.commitLsn ?? 0n)) ||
      (a.partial?.changes ?? 0) - (b.partial?.changes ?? 0)
    );
  }
  return 0;
}

function sign(value: bigint): number {
  return value < 0n ? -1 : value > 0n ? 1 : 0;
}
