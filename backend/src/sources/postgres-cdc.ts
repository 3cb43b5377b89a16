import { Client, Pool, type ClientConfig } from 'pg';
import type { DatasetSpec } from '../config/dataset';
import { parseDuration } from '../config/duration';
import type { PostgresSourceConfig } from '../config/schema';
import {
  comparePositions,
  decodePosition,
  encodePosition,
  parseLsn,
  type CdcPosition,
} from './postgres-cdc-position';
import { CDC_SESSION, CdcRows, type TextRow } from './postgres-cdc-rows';
import { ChangeStream } from './postgres-cdc-stream';
import { secretsOf, toSourceError } from './postgres-errors';
import { quoteIdent } from './postgres-sql';
import {
  ResyncNeededError,
  SourceError,
  type FetchRequest,
  type FetchResult,
  type Position,
  type Source,
} from './types';

/** How far the slot is behind, in bytes of WAL: what the replication metrics report. */
export interface SlotStats {
  /** WAL written since the last position the slot has confirmed. */
  lagBytes: number;
  /** WAL the server keeps for the slot (from its restart LSN on). */
  retainedBytes: number;
}

/** Node-pg hands every value over as the server's text: CdcRows does the one conversion. */
const TEXT_TYPES = { getTypeParser: () => (value: string) => value };

type SnapshotPosition = Extract<CdcPosition, { phase: 'snapshot' }>;
type StreamPosition = Extract<CdcPosition, { phase: 'stream' }>;

/** The initial copy under way: a REPEATABLE READ transaction on a connection of its own. */
interface SnapshotRead {
  client: Client;
  at: SnapshotPosition;
}

/** The default slot and publication name of a dataset: `livesync_<name>` (slot names allow no `-`). */
export function replicationName(dataset: string): string {
  return `livesync_${dataset.replace(/-/g, '_')}`;
}

/**
 * PostgreSQL change data capture (`mode: cdc`): logical replication with pgoutput through a
 * durable named slot and a publication of the table.
 *
 * The first read (no position, or a resync) creates the slot over a replication connection
 * with an exported snapshot and reads the table in keyset batches inside that snapshot
 * (`SET TRANSACTION SNAPSHOT`): exactly the rows committed before the slot's start, whose
 * changes the slot then streams. Nothing is missed and nothing is seen twice.
 *
 * A restart in the middle of the copy cannot get that snapshot back: the rest of the table is
 * read in a fresh snapshot, newer than the slot's start, and the stream replays every change
 * since the start over it. Records are stored by id as whole values, so a replayed change sets
 * a record to a state it had before, and the later changes of the stream bring it to its
 * current one: the totals end exactly equal to the table's, never counting a row twice.
 *
 * The position committed with each batch is the stream LSN (see postgres-cdc-position.ts);
 * the slot is acknowledged only once the engine has committed it (`committed`).
 */
export class PostgresCdcSource implements Source {
  readonly kind = 'postgres';
  private readonly pool: Pool;
  private readonly rows: CdcRows;
  private readonly secrets: string[];
  private readonly schemaName: string;
  private readonly tableName: string;
  private readonly table: string;
  readonly slot: string;
  readonly publication: string;
  private readonly heartbeatMs: number;
  private checked: Promise<void> | null = null;
  private snapshot: SnapshotRead | null = null;
  private stream: ChangeStream | null = null;
  private listener: () => void = () => undefined;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private stats: SlotStats | null = null;
  private emitRefused = false;

  constructor(
    private readonly spec: DatasetSpec,
    private readonly config: PostgresSourceConfig,
  ) {
    if (config.table === undefined) {
      throw new SourceError(`datasets.${spec.name}.source: mode cdc needs a table`, 'permanent', {
        origin: 'config',
      });
    }
    const [schema, name] = config.table.includes('.') ? config.table.split('.') : ['public', config.table];
    this.schemaName = schema!;
    this.tableName = name!;
    this.table = `${quoteIdent(this.schemaName)}.${quoteIdent(this.tableName)}`;
    this.slot = config.cdc?.slot ?? replicationName(spec.name);
    this.publication = config.cdc?.publication ?? replicationName(spec.name);
    this.heartbeatMs = parseDuration(config.cdc?.heartbeat ?? '10s');
    this.rows = new CdcRows(spec, config);
    this.secrets = secretsOf(config.url);
    this.pool = new Pool({ ...this.connection(), max: 2 });
    this.pool.on('error', () => undefined);
  }

  onChanges(listener: () => void): void {
    this.listener = listener;
  }

  async fetch(request: FetchRequest): Promise<FetchResult> {
    await this.check();
    const after = request.after === null ? null : this.decode(request.after);
    if (after === null) return this.readSnapshot(await this.createSlot(), request.limit);
    if (after.phase === 'snapshot') return this.readSnapshot(await this.resumeSnapshot(after), request.limit);
    const stream = await this.streamFrom(after);
    const page = stream.drain(request.limit);
    return {
      records: page.records,
      last: page.last && encodePosition(page.last),
      done: page.done,
    };
  }

  compare(a: Position, b: Position): number {
    return comparePositions(this.decode(a), this.decode(b));
  }

  committed(position: Position): void {
    const at = this.decode(position);
    if (at.phase === 'stream') this.stream?.committed(at);
  }

  /** The planner's row count of the table, for the copy's progress; nothing once it streams. */
  async estimateRemaining(after: Position | null): Promise<number | null> {
    const at = after === null ? null : this.decode(after);
    if (at?.phase === 'stream') return null;
    const { rows } = await this.pool.query<{ n: string }>(
      'SELECT reltuples::bigint::text AS n FROM pg_class WHERE oid = to_regclass($1)',
      [this.table],
    );
    const total = Number(rows[0]?.n ?? -1);
    return total < 0 ? null : Math.max(0, total - (at?.rows ?? 0));
  }

  /** The slot's lag and retained WAL as last sampled (every heartbeat), or null before the first sample. */
  slotStats(): SlotStats | null {
    return this.stats;
  }

  async close(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    await this.closeStream();
    await this.closeSnapshot();
    await this.pool.end();
  }

  private connection(): ClientConfig {
    return { connectionString: this.config.url, options: CDC_SESSION, application_name: 'livesync' };
  }

  private decode(position: Position): CdcPosition {
    try {
      return decodePosition(position);
    } catch (err) {
      // A position from mode poll: the copy has to start over in this mode.
      throw new ResyncNeededError(
        `${this.spec.name}: ${(err as Error).message}; the dataset was synced in another mode`,
      );
    }
  }

  /**
   * What replication needs, checked once (again after a failure): wal_level, the REPLICATION
   * attribute, the table and its replica identity, and the publication (created when missing).
   */
  private check(): Promise<void> {
    this.checked ??= this.prerequisites().catch((err: unknown) => {
      this.checked = null;
      throw this.sourceError(err);
    });
    return this.checked;
  }

  private async prerequisites(): Promise<void> {
    const name = this.spec.name;
    const refuse = (message: string) =>
      new SourceError(`${name}: ${message}`, 'permanent', { origin: 'config' });
    const setting = await this.pool.query<{ wal_level: string; replication: boolean; role: string }>(
      `SELECT current_setting('wal_level') AS wal_level, current_user AS role,
              (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS replication`,
    );
    const { wal_level: walLevel, replication, role } = setting.rows[0]!;
    if (walLevel !== 'logical') {
      throw refuse(
        `mode cdc needs wal_level = logical, and the server has wal_level = ${walLevel}: ` +
          'set it (ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL, or use mode poll',
      );
    }
    if (!replication) {
      throw refuse(
        `mode cdc needs the REPLICATION privilege, which role "${role}" lacks: ALTER ROLE ${quoteIdent(role)} REPLICATION`,
      );
    }
    const table = await this.pool.query<{ oid: number; identity: string }>(
      'SELECT oid::int AS oid, relreplident::text AS identity FROM pg_class WHERE oid = to_regclass($1)',
      [this.table],
    );
    const found = table.rows[0];
    if (!found) throw refuse(`table ${this.config.table} does not exist`);
    await this.checkIdentity(found.oid, found.identity, refuse);
    await this.ensurePublication(refuse);
    this.startHeartbeat();
  }

  /** Deletes carry only the replica identity: the id must be part of it. */
  private async checkIdentity(
    oid: number,
    identity: string,
    refuse: (message: string) => Error,
  ): Promise<void> {
    if (identity === 'f') return;
    const fix = `ALTER TABLE ${this.config.table} REPLICA IDENTITY FULL (or USING INDEX on a unique index of "${this.config.id}")`;
    if (identity === 'n')
      throw refuse(`the table's REPLICA IDENTITY is NOTHING, so deletes carry no id: ${fix}`);
    const { rows } = await this.pool.query<{ name: string }>(
      `SELECT a.attname AS name FROM pg_index i
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
       WHERE i.indrelid = $1 AND (CASE WHEN $2 = 'd' THEN i.indisprimary ELSE i.indisreplident END)`,
      [oid, identity],
    );
    if (rows.length === 0) throw refuse(`the table has no primary key, so deletes carry no id: ${fix}`);
    if (!rows.some((row) => row.name === this.config.id)) {
      throw refuse(
        `deletes carry only the replica identity (${rows.map((r) => r.name).join(', ')}), not "${this.config.id}": ${fix}`,
      );
    }
  }

  private async ensurePublication(refuse: (message: string) => Error): Promise<void> {
    const name = quoteIdent(this.publication);
    const { rows } = await this.pool.query<{ all: boolean; ops: boolean; has: boolean }>(
      `SELECT puballtables AS all, pubinsert AND pubupdate AND pubdelete AND pubtruncate AS ops,
              EXISTS (SELECT 1 FROM pg_publication_tables t
                      WHERE t.pubname = p.pubname AND t.schemaname = $2 AND t.tablename = $3) AS has
       FROM pg_publication p WHERE pubname = $1`,
      [this.publication, this.schemaName, this.tableName],
    );
    const publication = rows[0];
    if (!publication) {
      try {
        await this.pool.query(`CREATE PUBLICATION ${name} FOR TABLE ${this.table}`);
      } catch (err) {
        throw refuse(
          `cannot create publication "${this.publication}" (${(err as Error).message}): creating it needs CREATE on ` +
            `the database and ownership of the table; or create it as an owner: CREATE PUBLICATION ${name} FOR TABLE ${this.table}`,
        );
      }
      return;
    }
    if (!publication.has)
      throw refuse(`publication "${this.publication}" does not publish ${this.config.table}`);
    if (!publication.ops) {
      throw refuse(`publication "${this.publication}" must publish inserts, updates, deletes and truncates`);
    }
  }

  /**
   * A fresh copy: drops the slot of an earlier copy, creates it again with an exported
   * snapshot and imports that snapshot into the transaction that reads the table.
   */
  private async createSlot(): Promise<SnapshotRead> {
    await this.closeStream();
    await this.closeSnapshot();
    await this.run(() =>
      this.pool.query(
        'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1',
        [this.slot],
      ),
    );
    const replication = new Client({ ...this.connection(), replication: 'database' } as ClientConfig);
    replication.on('error', () => undefined);
    const client = new Client(this.connection());
    client.on('error', () => undefined);
    try {
      await this.run(async () => {
        await replication.connect();
        const created = await replication.query<{ consistent_point: string; snapshot_name: string }>(
          `CREATE_REPLICATION_SLOT ${quoteIdent(this.slot)} LOGICAL pgoutput EXPORT_SNAPSHOT`,
        );
        const { consistent_point: start, snapshot_name: snapshot } = created.rows[0]!;
        await client.connect();
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        await client.query(`SET TRANSACTION SNAPSHOT '${snapshot.replace(/'/g, "''")}'`);
        this.snapshot = { client, at: { phase: 'snapshot', slotLsn: parseLsn(start), rows: 0, key: '' } };
      });
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    } finally {
      // The exported snapshot is needed only until it is imported.
      await replication.end().catch(() => undefined);
    }
    return this.snapshot!;
  }

  /** The copy goes on: in its own snapshot while this process holds it, else in a fresh one (see the class comment). */
  private async resumeSnapshot(after: SnapshotPosition): Promise<SnapshotRead> {
    const held = this.snapshot;
    if (held && comparePositions(held.at, after) === 0) return held;
    await this.closeSnapshot();
    await this.requireSlot();
    const client = new Client(this.connection());
    client.on('error', () => undefined);
    await this.run(async () => {
      await client.connect();
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    });
    this.snapshot = { client, at: after };
    return this.snapshot;
  }

  private async readSnapshot(read: SnapshotRead, limit: number): Promise<FetchResult> {
    const { at } = read;
    const id = quoteIdent(this.config.id);
    const columns = this.rows.columns.map(quoteIdent).join(', ');
    const values: unknown[] = at.rows > 0 ? [at.key, limit] : [limit];
    const text =
      `SELECT ${columns} FROM ${this.table} ${at.rows > 0 ? `WHERE ${id} > $1` : ''} ` +
      `ORDER BY ${id} LIMIT $${values.length}`;
    const result = await this.run(() => read.client.query<TextRow>({ text, values, types: TEXT_TYPES }));
    const cursor = encodePosition(at).cursor;
    const records = result.rows.map((row) => this.rows.record(row, cursor));
    if (records.length < limit) {
      // The copy is complete: the stream takes over from the slot's start. It starts now, so
      // that its changes wake the engine even when this (perhaps empty) page ends the run.
      await this.closeSnapshot();
      const start: StreamPosition = { phase: 'stream', lsn: at.slotLsn, partial: null };
      await this.streamFrom(start);
      return { records, last: encodePosition(start), done: false };
    }
    read.at = { ...at, rows: at.rows + records.length, key: records.at(-1)!.id };
    return { records, last: encodePosition(read.at), done: false };
  }

  /**
   * The stream, started (again) when it failed (a lost connection, a restarted server) or is
   * not exactly at `after` (a batch the store did not take is read again).
   */
  private async streamFrom(after: StreamPosition): Promise<ChangeStream> {
    const current = this.stream;
    if (current && !current.failed && comparePositions(current.position, after) === 0) return current;
    await this.closeStream();
    await this.requireSlot();
    const stream = new ChangeStream({
      url: this.config.url,
      slot: this.slot,
      publication: this.publication,
      schema: this.schemaName,
      table: this.tableName,
      rows: this.rows,
      start: after,
      highWater: this.spec.sync.batchSize,
      onReady: () => this.listener(),
    });
    try {
      await stream.start();
    } catch (err) {
      await stream.close().catch(() => undefined);
      throw this.sourceError(err);
    }
    this.stream = stream;
    return stream;
  }

  /** A slot that is gone (dropped by hand, or never made) cannot give back what it held: read everything again. */
  private async requireSlot(): Promise<void> {
    const { rows } = await this.run(() =>
      this.pool.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [this.slot]),
    );
    if (rows.length === 0) throw new ResyncNeededError(`the replication slot "${this.slot}" is gone`);
  }

  /**
   * Every heartbeat: a standby status update (the stream's safe LSN; also keeps the connection
   * alive while the engine is busy), a logical message so that an idle database still moves the
   * stream forward (the keepalive that follows is confirmed, and the slot stops pinning WAL), and
   * a sample of the slot's lag for the metrics.
   */
  private startHeartbeat(): void {
    if (this.heartbeatMs === 0 || this.heartbeatTimer) return;
    this.heartbeatTimer = setInterval(() => void this.beat(), this.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  private async beat(): Promise<void> {
    this.stream?.heartbeat();
    try {
      if (!this.emitRefused) {
        await this.pool.query("SELECT pg_logical_emit_message(false, 'livesync', 'heartbeat')").catch(() => {
          // Not allowed to this role: keepalives still move the slot forward whenever WAL is written.
          this.emitRefused = true;
        });
      }
      const { rows } = await this.pool.query<{ lag: string | null; retained: string | null }>(
        `SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS lag,
                (pg_current_wal_lsn() - restart_lsn)::text AS retained
         FROM pg_replication_slots WHERE slot_name = $1`,
        [this.slot],
      );
      const row = rows[0];
      this.stats = row ? { lagBytes: Number(row.lag ?? 0), retainedBytes: Number(row.retained ?? 0) } : null;
    } catch {
      // Sampling is best effort: the sync itself reports an unreachable upstream.
    }
  }

  private async closeStream(): Promise<void> {
    const stream = this.stream;
    this.stream = null;
    await stream?.close().catch(() => undefined);
  }

  private async closeSnapshot(): Promise<void> {
    const read = this.snapshot;
    this.snapshot = null;
    await read?.client.end().catch(() => undefined);
  }

  private async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw this.sourceError(err);
    }
  }

  private sourceError(err: unknown): SourceError {
    return toSourceError(this.spec.name, err, this.secrets);
  }
}
