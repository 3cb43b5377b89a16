import type { Socket } from 'node:net';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { formatLsn, parseLsn, comparePositions, type CdcPosition } from './postgres-cdc-position';
import { CDC_SESSION, type CdcRows, type TextRow } from './postgres-cdc-rows';
import { ResyncNeededError, type SourceRecord } from './types';

type StreamPosition = Extract<CdcPosition, { phase: 'stream' }>;

/** What the stream buffers until the engine drains it: one message's records, a commit, a truncate. */
type Entry =
  | { kind: 'change'; records: SourceRecord[]; commitLsn: bigint; index: number }
  | { kind: 'commit'; endLsn: bigint }
  | { kind: 'truncate' };

export interface StreamOptions {
  url: string;
  slot: string;
  publication: string;
  /** The replicated table. */
  schema: string;
  table: string;
  rows: CdcRows;
  /** Where to start: every change after it. */
  start: StreamPosition;
  /** Changes buffered beyond which the socket is paused until the engine drains them. */
  highWater: number;
  /** Called when a transaction (or a batch's worth of a large one) is ready, or the stream failed. */
  onReady: () => void;
}

/**
 * pgoutput plugin that keeps every value in its text form: the library would parse it with
 * node-pg's global parsers (timestamps to Date, losing microseconds and time zones), and the
 * snapshot reads the same text, so both go through CdcRows alone.
 */
class TextPgoutputPlugin extends PgoutputPlugin {
  override parse(buffer: Buffer): Pgoutput.Message {
    const message = super.parse(buffer);
    if (message.tag === 'relation') for (const column of message.columns) column.parser = keepText;
    return message;
  }
}

function keepText(text: unknown): unknown {
  return text;
}

/**
 * One logical replication connection (pg-logical-replication, pgoutput), buffering changes
 * until the engine drains them.
 *
 * Acknowledgement: the library acknowledges on its own in two ways, both turned off here:
 * `acknowledge.auto` confirms every message as soon as it is received, and
 * `acknowledge.timeoutSeconds` confirms the last received LSN on a timer. Either would tell the
 * server that changes not yet committed in the store are done with, and a crash would lose
 * them. This class confirms only (a) the position of a batch the engine has committed, and
 * (b) a keepalive's LSN when nothing is in flight: no open transaction, nothing buffered, and
 * everything drained committed (the server has sent everything before that LSN, so there is
 * nothing of ours before it that is not held).
 *
 * The library's `acknowledge(lsn)` reports lsn + 1 as flushed. The server replays a
 * transaction whose commit record starts at or after the confirmed LSN, and the next commit
 * record may start exactly at the end of the previous one: confirming end + 1 could skip it.
 * So `confirm` hands the library lsn - 1, and the server reads exactly the end LSN.
 */
export class ChangeStream {
  private readonly service: LogicalReplicationService;
  private readonly entries: Entry[] = [];
  private head = 0;
  private changes = 0;
  private transaction: { commitLsn: bigint; index: number; skip: number } | null = null;
  /** The partly applied transaction to skip into, on a start from a partial position. */
  private skip: StreamPosition['partial'];
  /** The position after everything drained so far. */
  position: StreamPosition;
  private committedPosition: StreamPosition;
  private confirmedLsn = 0n;
  private failure: Error | null = null;
  private paused = false;
  private closed = false;
  private ended: Promise<void> = Promise.resolve();

  constructor(private readonly options: StreamOptions) {
    this.position = options.start;
    this.committedPosition = options.start;
    this.skip = options.start.partial;
    this.service = new LogicalReplicationService(
      { connectionString: options.url, options: CDC_SESSION, application_name: 'livesync-cdc' },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: false } },
    );
    this.service.on('data', (_lsn: string, message: Pgoutput.Message) => {
      try {
        this.receive(message);
      } catch (err) {
        this.fail(err);
      }
    });
    this.service.on('heartbeat', (lsn: string, _at: number, reply: boolean) => this.keepalive(lsn, reply));
    this.service.on('error', (err: Error) => this.fail(err));
  }

  /** True once the connection failed: the stream must be started again. */
  get failed(): boolean {
    return this.failure !== null;
  }

  /**
   * Resolves once the server streams; rejects with its refusal as `fail` reads it (a slot that
   * does not exist is a ResyncNeededError, also when it was dropped just before this start).
   */
  async start(): Promise<void> {
    const started = new Promise<void>((resolve) => this.service.once('start', () => resolve()));
    const plugin = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: [this.options.publication] });
    const subscribed = this.service.subscribe(plugin, this.options.slot, formatLsn(this.options.start.lsn));
    this.ended = subscribed.then(
      () => this.fail(new Error('the replication stream ended')),
      (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))),
    );
    await Promise.race([
      started,
      subscribed.then(
        () => {
          throw this.failure ?? new Error('the replication stream ended before it started');
        },
        // `ended`'s handler, registered first, has already read the error into `failure`.
        (err: unknown) => {
          throw this.failure ?? err;
        },
      ),
    ]);
  }

  /** Takes up to `limit` records (whole messages; a commit right after them too) in order. */
  drain(limit: number): { records: SourceRecord[]; last: StreamPosition | null; done: boolean } {
    if (this.failure) throw this.failure;
    const records: SourceRecord[] = [];
    let last: StreamPosition | null = null;
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head]!;
      if (entry.kind === 'truncate') {
        throw new ResyncNeededError(`${this.options.schema}.${this.options.table} was truncated`);
      }
      if (entry.kind === 'change') {
        if (records.length >= limit) break;
        records.push(...entry.records);
        this.changes--;
        last = {
          phase: 'stream',
          lsn: this.position.lsn,
          partial: { commitLsn: entry.commitLsn, changes: entry.index + 1 },
        };
      } else {
        last = { phase: 'stream', lsn: entry.endLsn, partial: null };
      }
      this.position = last;
      this.head++;
    }
    if (this.head === this.entries.length) {
      this.entries.length = 0;
      this.head = 0;
    }
    if (this.paused && this.changes < this.options.highWater / 2) this.pause(false);
    return { records, last, done: this.head === this.entries.length };
  }

  /** The engine committed a batch up to `position`: confirm the transactions it completes. */
  committed(position: StreamPosition): void {
    if (comparePositions(position, this.committedPosition) > 0) this.committedPosition = position;
    this.confirm(position.lsn);
  }

  /**
   * A standby status update with what is safe to confirm, asking the server to answer with a
   * keepalive: it carries the server's position, which `keepalive` confirms when nothing is in
   * flight. (Without the request the server sends keepalives only after half of
   * wal_sender_timeout without a status update, and these updates keep putting that off.)
   */
  heartbeat(): void {
    this.confirm(this.confirmedLsn, true);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.service.destroy();
    await this.ended;
  }

  private idle(): boolean {
    return (
      this.transaction === null &&
      this.head === this.entries.length &&
      comparePositions(this.position, this.committedPosition) === 0
    );
  }

  private keepalive(lsnText: string, reply: boolean): void {
    const lsn = parseLsn(lsnText);
    if (this.idle() && lsn > this.confirmedLsn) this.confirm(lsn);
    else if (reply) this.confirm(this.confirmedLsn);
  }

  private confirm(lsn: bigint, ping = false): void {
    if (lsn > this.confirmedLsn) this.confirmedLsn = lsn;
    if (this.confirmedLsn === 0n) return;
    void this.service
      .acknowledge(formatLsn(this.confirmedLsn - 1n), ping)
      .catch((err: unknown) => this.fail(err));
  }

  private receive(message: Pgoutput.Message): void {
    switch (message.tag) {
      case 'begin': {
        const commitLsn = parseLsn(message.commitLsn ?? '0/0');
        const skip = this.skip && this.skip.commitLsn === commitLsn ? this.skip.changes : 0;
        this.skip = null;
        this.transaction = { commitLsn, index: 0, skip };
        return;
      }
      case 'insert':
      case 'update':
      case 'delete':
        if (this.ours(message.relation)) this.change(message);
        return;
      case 'truncate':
        if (message.relations.some((relation) => this.ours(relation))) {
          this.push({ kind: 'truncate' });
          this.options.onReady();
        }
        return;
      case 'commit': {
        const transaction = this.transaction;
        this.transaction = null;
        if (transaction && transaction.index > 0) {
          this.push({ kind: 'commit', endLsn: parseLsn(message.commitEndLsn ?? '0/0') });
          this.options.onReady();
        }
        return;
      }
      default:
        return;
    }
  }

  private ours(relation: Pgoutput.MessageRelation | undefined): boolean {
    return relation?.schema === this.options.schema && relation.name === this.options.table;
  }

  private change(message: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete): void {
    const transaction = this.transaction;
    if (!transaction) return;
    const index = transaction.index++;
    if (index < transaction.skip) return;
    const { rows } = this.options;
    const cursor = formatLsn(transaction.commitLsn);
    const records: SourceRecord[] = [];
    if (message.tag === 'delete') {
      records.push(rows.tombstone(rows.idOf((message.key ?? message.old ?? {}) as TextRow), cursor));
    } else {
      const row = message.new as TextRow;
      const before = message.tag === 'update' ? ((message.key ?? message.old) as TextRow | null) : null;
      // An update that changed the id: the old id is gone.
      if (before && rows.idOf(before) !== rows.idOf(row))
        records.push(rows.tombstone(rows.idOf(before), cursor));
      records.push(rows.record(row, cursor));
    }
    this.push({ kind: 'change', records, commitLsn: transaction.commitLsn, index });
    this.changes++;
    if (this.changes >= this.options.highWater) {
      this.pause(true);
      this.options.onReady();
    }
  }

  private push(entry: Entry): void {
    this.entries.push(entry);
  }

  private fail(err: unknown): void {
    if (this.failure || this.closed) return;
    const error = err instanceof Error ? err : new Error(String(err));
    this.failure = /replication slot .* does not exist/.test(error.message)
      ? new ResyncNeededError(`the replication slot "${this.options.slot}" is gone`)
      : error;
    this.options.onReady();
  }

  /**
   * Backpressure: stops reading the socket while the engine is behind. The library has no
   * pause of its own (its flow control queues messages out of order with keepalives), so its
   * connection's socket is paused directly.
   */
  private pause(paused: boolean): void {
    this.paused = paused;
    const socket = (this.service as unknown as { _connection?: { stream?: Socket } })._connection?.stream;
    if (paused) socket?.pause();
    else socket?.resume();
  }
}
