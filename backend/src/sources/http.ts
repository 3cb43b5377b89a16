import type { DatasetSpec } from '../config/dataset';
import { parseDuration } from '../config/duration';
import { httpSourceProblems } from '../config/http-source';
import { formatKeyPath } from '../config/keypath';
import type { CursorType, HttpSourceConfig } from '../config/schema';
import {
  compareCursorValues,
  cursorValue,
  inferCursorType,
  instantValue,
  isTimeCursor,
  rewindCursor,
  timestampMs,
} from './cursor-type';
import { messageOf, messageWithCauses } from './error-text';
import { parsePath, valueAt, type JsonPath } from './json-path';
import { linkTarget } from './link-header';
import { compareDecimals, comparePositions, isDecimal } from './order';
import {
  SourceError,
  type FetchRequest,
  type FetchResult,
  type Position,
  type Source,
  type SourceRecord,
} from './types';

/** One request of a scan. */
interface Step {
  url: URL;
  /**
   * The cursor the query is anchored at: the API answers with records whose cursor is at
   * least this; null reads from the start.
   */
  since: string | null;
  /** Which page of its query this is: the page number (page), the offset (offset), a count (link, cursor). */
  index: number;
  /**
   * Where the previous page of the same query ended, checked to prove that no record moved
   * to an earlier page meanwhile (which would skip one): an offset request overlaps it by one
   * record; in page and link mode the previous page is read again after this one.
   */
  check: Position | null;
}

/** A response: its JSON body and the RFC 8288 links to the next and previous pages. */
interface Reply {
  body: unknown;
  next: string | null;
  prev: string | null;
}

interface FieldPaths {
  id: JsonPath;
  time: JsonPath;
  cursor: JsonPath;
  deleted: JsonPath | null;
  dims: JsonPath[];
  metrics: JsonPath[];
  distinct: JsonPath[];
}

export interface HttpSourceOptions {
  /** The clock `sync.lag` is measured by; tests pass their own. */
  now?: () => number;
}

/** How much of an offending value an error message quotes. */
const QUOTE_LIMIT = 60;
/** Times one fetch starts a tie over after records moved under a page scan, before giving up for this run. */
const RESCANS = 20;

/**
 * Reads a JSON API page by page, in (cursor, id) order, which the API must return its records
 * in. Each query is anchored at the last record read (cursorParam, at least that cursor; with
 * idParam, after that id within it) so records that move while a scan runs are found where
 * they move to. Only more records sharing one cursor value than a page holds are read with
 * further pages of one query (page number, offset, Link or the API's token), and a page
 * number's, an offset's or a Link's page is proven to follow the one before.
 * Records already delivered that a query returns again are dropped; whatever slips through
 * is harmless because the store upserts by id. Cursors compare by their type
 * (sources/cursor-type.ts), never as text. Config validation (config/http-source.ts) refuses
 * what a configured API shape cannot read without loss.
 */
export class HttpSource implements Source {
  readonly kind = 'http';
  private readonly timeoutMs: number;
  private readonly paths: FieldPaths;
  private readonly recordsPath: JsonPath;
  private readonly now: () => number;
  /** Header values may hold secrets: they are scrubbed from every message. */
  private readonly secrets: string[];
  /** Declared, or inferred from the first cursor seen and then held to. */
  private cursorType: CursorType | null;
  /** The request that continues after the last batch, while pages of one query are being read. */
  private resume: { position: Position; step: Step } | null = null;

  constructor(
    private readonly spec: DatasetSpec,
    private readonly config: HttpSourceConfig,
    options: HttpSourceOptions = {},
  ) {
    const problems = httpSourceProblems(config, spec.sync);
    if (problems.length > 0) {
      throw new Error(
        problems.map((p) => `datasets.${spec.name}.${formatKeyPath(p.path)}: ${p.message}`).join('\n'),
      );
    }
    this.timeoutMs = parseDuration(config.timeout);
    const path = (name: string) => parsePath(config.fields[name] ?? name);
    this.paths = {
      id: path(config.id),
      time: path(config.time),
      cursor: path(config.cursor),
      deleted: config.deleted === undefined ? null : path(config.deleted),
      dims: spec.dimensions.map(path),
      metrics: spec.metrics.map(path),
      distinct: spec.distinct.map(path),
    };
    this.recordsPath = parsePath(config.recordsPath);
    this.now = options.now ?? Date.now;
    this.secrets = Object.values(config.headers).filter((value) => value !== '');
    this.cursorType = config.cursorType ?? null;
  }

  async fetch(request: FetchRequest): Promise<FetchResult> {
    const { after, limit } = request;
    if (after !== null) this.learnType(after.cursor, 'the stored position');
    const rewound =
      after !== null && request.rewindMs !== undefined
        ? rewindCursor(this.type(), after.cursor, request.rewindMs)
        : null;
    const resume = this.resume;
    // A saved continuation is used up by this fetch, or obsolete.
    this.resume = null;
    let step =
      rewound === null && after !== null && resume && samePosition(resume.position, after)
        ? resume.step
        : this.anchored(
            rewound ?? after?.cursor ?? null,
            rewound === null ? (after?.id ?? null) : null,
            limit,
          );
    let floor = rewound === null ? after : null;
    const records: SourceRecord[] = [];
    for (let rescans = 0; ;) {
      const reply = await this.get(step.url, request.signal);
      const page = this.page(reply.body);
      if (!(await this.follows(step, page, reply, request.signal))) {
        if (++rescans > RESCANS) throw this.moving(step);
        step = this.anchored(step.since, null, limit);
        continue;
      }
      const ripe = this.ripe(page);
      const fresh = ripe.filter((record) => floor === null || this.compare(record, floor) > 0);
      records.push(...fresh);
      floor = fresh.at(-1) ?? floor;
      // Whatever follows is newer than now - lag: read on the next run.
      if (ripe.length < page.length) return result(records, true);
      const next = this.next(step, page, reply, limit);
      if (next === null) return result(records, true);
      if (next.url.href === step.url.href) throw this.stuck(page);
      if (records.length >= limit && floor !== null) {
        this.resume = { position: positionOf(floor), step: next };
        return result(records, false);
      }
      step = next;
    }
  }

  /**
   * Asks for the ids by `idFilterParam`, repeated (`?id=1&id=2`), a few at a time (URLs stay short,
   * requests no larger than a sync batch). An API that answers records not asked for ignores
   * the parameter: the missing ones cannot be told from deleted ones, so that is an error.
   */
  async existing(ids: string[], signal?: AbortSignal): Promise<Set<string>> {
    const param = this.config.idFilterParam;
    if (param === undefined)
      throw this.configError('source.idFilterParam is not set: deletes cannot be found');
    const found = new Set<string>();
    for (const chunk of idChunks(ids, this.spec.sync.batchSize)) {
      const url = new URL(this.config.url);
      url.searchParams.set(this.config.limitParam, String(chunk.length));
      for (const id of chunk) url.searchParams.append(param, id);
      const { body } = await this.get(url, signal);
      const asked = new Set(chunk);
      this.recordsIn(body).forEach((raw, index) => {
        const id = this.key(raw, index, this.config.id, this.paths.id);
        if (!asked.has(id)) {
          throw this.configError(
            `asked for ${chunk.length} ids by "${param}", the API answered record "${quote(id)}" too: ` +
              `it does not filter by that parameter, so deletes cannot be found`,
          );
        }
        found.add(id);
      });
    }
    return found;
  }

  compare(a: Position, b: Position): number {
    if (this.cursorType === null) this.learnType(a.cursor, 'a position');
    const type = this.type();
    return comparePositions(a, b, (x, y) => compareCursorValues(type, x, y));
  }

  async close(): Promise<void> {
    this.resume = null;
  }

  private type(): CursorType {
    if (this.cursorType === null) throw new Error('the cursor type is not known before a cursor is seen');
    return this.cursorType;
  }

  /** Infers the cursor type from the first value seen, once; refuses a type lag or lookback cannot use. */
  private learnType(cursor: string, where: string): void {
    if (this.cursorType !== null) return;
    const inferred = inferCursorType(cursor);
    if (inferred === null) {
      throw this.configError(
        `the cursor "${quote(cursor)}" of ${where} is neither a number nor an RFC 3339 timestamp; ` +
          'cursors are compared by value, never as text',
      );
    }
    const { lagMs, lookbackMs } = this.spec.sync;
    if (inferred === 'number' && (lagMs > 0 || lookbackMs > 0)) {
      throw this.configError(
        `the cursor "${quote(cursor)}" of ${where} is a number, and sync.lag and sync.lookback are durations: ` +
          'declare source.cursorType (epoch_s, epoch_ms, epoch_us or epoch_ns for a time; number for a ' +
          'sequence, with sync.lag and sync.lookback 0s)',
      );
    }
    this.cursorType = inferred;
  }

  /** The first request of a query anchored at a position (or at the start). */
  private anchored(since: string | null, id: string | null, limit: number): Step {
    const { config } = this;
    const url = new URL(config.url);
    url.searchParams.set(config.limitParam, String(limit));
    if (since !== null) url.searchParams.set(config.cursorParam, since);
    if (since !== null && id !== null && config.idParam !== undefined)
      url.searchParams.set(config.idParam, id);
    return this.at({ url, since, index: 0, check: null }, config.pagination.kind === 'page' ? 1 : 0, null);
  }

  /** Another page of the same query. */
  private at(step: Step, index: number, check: Position | null): Step {
    const url = new URL(step.url);
    const { pagination } = this.config;
    if (pagination.kind === 'page') url.searchParams.set(pagination.pageParam, String(index));
    if (pagination.kind === 'offset') url.searchParams.set(pagination.offsetParam, String(index));
    return { url, since: step.since, index, check };
  }

  /** The request after this page, or null when the upstream has nothing more. */
  private next(step: Step, page: SourceRecord[], reply: Reply, limit: number): Step | null {
    const { pagination, cursorParam, idParam } = this.config;
    const last = page.at(-1);
    if (last === undefined) return null;
    const own = this.ownNext(reply);
    if (own === null || page.length < limit) return null;
    const tie =
      idParam === undefined &&
      step.since !== null &&
      compareCursorValues(this.type(), last.cursor, step.since) === 0;
    if (!tie) return this.anchored(last.cursor, last.id, limit);
    // A page of one cursor value, the one the query is anchored at: step within it.
    if (pagination.kind === 'page') return this.at(step, step.index + 1, positionOf(last));
    if (pagination.kind === 'offset') return this.at(step, step.index + page.length - 1, positionOf(last));
    // Refused at start-up (config/http-source.ts); kept so that nothing could loop.
    if (own === undefined) throw this.stuck(page);
    if (pagination.kind === 'link') {
      return { url: this.linked(own), since: step.since, index: step.index + 1, check: positionOf(last) };
    }
    // The API's token carries on within the value; the API answers for what moves meanwhile.
    const url = new URL(step.url);
    url.searchParams.set(cursorParam, own);
    if (idParam !== undefined) url.searchParams.delete(idParam);
    return { url, since: step.since, index: step.index + 1, check: null };
  }

  /**
   * The API's own next page: the token at `nextPath` (cursor) or the Link header's rel="next"
   * (link); null when the API says it has no more, undefined in the other modes.
   */
  private ownNext(reply: Reply): string | null | undefined {
    const { pagination } = this.config;
    if (pagination.kind === 'link') return reply.next;
    if (pagination.kind !== 'cursor') return undefined;
    const token = valueAt(reply.body, parsePath(pagination.nextPath));
    return token === undefined || token === null || token === '' ? null : String(token);
  }

  /**
   * Whether a page of a tie continues exactly where the previous one ended. A record that left
   * an earlier page (updated to a later cursor, deleted) shifts every later one a place
   * forward, so one record would fall between two pages unread.
   */
  private async follows(
    step: Step,
    page: SourceRecord[],
    reply: Reply,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const { check } = step;
    const { pagination } = this.config;
    if (check === null) return true;
    if (pagination.kind === 'offset') {
      const first = page[0];
      return first !== undefined && samePosition(first, check);
    }
    if (pagination.kind !== 'link')
      return this.endsAt(this.at(step, step.index - 1, null).url, check, signal);
    // A Link-paged API that gives no previous page leaves nothing to check against.
    return reply.prev === null || this.endsAt(this.linked(reply.prev), check, signal);
  }

  /** Whether the page at `url`, read now, still ends with the record it ended with before. */
  private async endsAt(url: URL, check: Position, signal?: AbortSignal): Promise<boolean> {
    const last = this.page((await this.get(url, signal)).body).at(-1);
    return last !== undefined && samePosition(last, check);
  }

  /** The records of a page up to now - lag: a record newer than that and all after it wait. */
  private ripe(page: SourceRecord[]): SourceRecord[] {
    const { lagMs } = this.spec.sync;
    const type = this.type();
    if (lagMs === 0 || !isTimeCursor(type)) return page;
    const cutoff = instantValue(type, this.now() - lagMs);
    const end = page.findIndex((record) => compareDecimals(cursorValue(type, record.cursor)!, cutoff) > 0);
    return end < 0 ? page : page.slice(0, end);
  }

  /** A page a Link header names, refused when it would take the configured headers elsewhere. */
  private linked(link: string): URL {
    const url = new URL(link);
    const origin = new URL(this.config.url).origin;
    if (url.origin !== origin) {
      throw this.configError(
        `a page the Link header names is on ${url.origin}, not ${origin}; the configured headers are only sent to ${origin}`,
      );
    }
    return url;
  }

  private stuck(page: SourceRecord[]): SourceError {
    const cursor = page.at(-1)?.cursor ?? '';
    return new SourceError(
      `${this.spec.name}: the API keeps returning the same ${page.length} records (cursor "${quote(cursor)}"); ` +
        'it does not honour the paging parameters',
      'permanent',
    );
  }

  private moving(step: Step): SourceError {
    return new SourceError(
      `${this.spec.name}: records sharing the cursor "${quote(step.since ?? '')}" kept moving between pages ` +
        `while they were read (${RESCANS} scans); reading from the last complete position on the next run`,
      'transient',
    );
  }

  private configError(message: string): SourceError {
    return new SourceError(`${this.spec.name}: ${message}`, 'permanent', { origin: 'config' });
  }

  private async get(url: URL, signal?: AbortSignal): Promise<Reply> {
    // Never the query string: it may carry an API key.
    const where = `GET ${url.origin}${url.pathname}`;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    let text: string;
    let links: string | null;
    try {
      const response = await fetch(url, {
        headers: { accept: 'application/json', ...this.config.headers },
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      if (!response.ok) {
        await response.body?.cancel();
        throw this.statusError(where, response);
      }
      links = response.headers.get('link');
      text = await response.text();
    } catch (err) {
      if (err instanceof SourceError) throw err;
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted) {
        throw new SourceError(
          `${this.spec.name}: ${where} timed out after ${this.timeoutMs} ms`,
          'transient',
        );
      }
      throw new SourceError(
        this.scrub(`${this.spec.name}: ${where} failed: ${messageWithCauses(err)}`),
        'transient',
      );
    }
    try {
      const body = JSON.parse(text) as unknown;
      return { body, next: linkTarget(links, 'next', url.href), prev: linkTarget(links, 'prev', url.href) };
    } catch (err) {
      throw new SourceError(
        `${this.spec.name}: ${where} returned invalid JSON (${messageOf(err)})`,
        'permanent',
      );
    }
  }

  /** Overload and server trouble pass; any other refusal will repeat until the config changes. */
  private statusError(where: string, response: Response): SourceError {
    const { status } = response;
    const transient = status >= 500 || status === 429 || status === 408;
    const message = `${this.spec.name}: ${where} responded ${status} ${response.statusText}`.trimEnd();
    // Refused credentials and a wrong URL are the dataset's configuration to fix.
    const origin = status === 401 || status === 403 || status === 404 ? 'config' : 'upstream';
    return new SourceError(message, transient ? 'transient' : 'permanent', { origin });
  }

  /** The records of a response, each checked, in the (cursor, id) order the API must keep. */
  private page(body: unknown): SourceRecord[] {
    const page = this.recordsIn(body).map((raw, index) => this.toRecord(raw, index));
    for (let i = 1; i < page.length; i++) {
      const [before, record] = [page[i - 1]!, page[i]!];
      if (this.compare(before, record) < 0) continue;
      throw new SourceError(
        `${this.spec.name}: record ${i} of the response (cursor "${quote(record.cursor)}", id "${quote(record.id)}") ` +
          `does not come after the one before it (cursor "${quote(before.cursor)}", id "${quote(before.id)}"): ` +
          'the API must return records sorted by cursor, then id, each once',
        'permanent',
        { origin: 'config' },
      );
    }
    return page;
  }

  private recordsIn(body: unknown): unknown[] {
    const records = valueAt(body, this.recordsPath);
    if (Array.isArray(records)) return records;
    const at = this.config.recordsPath === '' ? 'the top level' : `"${this.config.recordsPath}"`;
    throw new SourceError(`${this.spec.name}: the response has no records array at ${at}`, 'permanent', {
      origin: 'config',
    });
  }

  private toRecord(raw: unknown, index: number): SourceRecord {
    const { paths, config } = this;
    const id = this.key(raw, index, config.id, paths.id);
    const cursor = this.key(raw, index, config.cursor, paths.cursor);
    this.learnType(cursor, `record ${index} of the response`);
    if (cursorValue(this.type(), cursor) === null) {
      const declared = config.cursorType === undefined ? 'inferred from the first cursor seen' : 'declared';
      throw new SourceError(
        `${this.spec.name}: record ${index} of the response has a cursor "${quote(cursor)}" that is not ` +
          `${this.type() === 'timestamp' ? 'an RFC 3339 timestamp' : 'a number'} (cursorType ${this.type()}, ${declared})`,
        'permanent',
      );
    }
    return {
      id,
      time: this.time(raw, index),
      cursor,
      deleted: paths.deleted !== null && isTruthy(valueAt(raw, paths.deleted)),
      dims: paths.dims.map((path) => label(valueAt(raw, path))),
      metrics: paths.metrics.map((path) => numberOrNull(valueAt(raw, path))),
      distinct: paths.distinct.map((path) => label(valueAt(raw, path))),
    };
  }

  /** An id or cursor: a non-empty string or a number, kept as text. */
  private key(raw: unknown, index: number, field: string, path: JsonPath): string {
    const value = valueAt(raw, path);
    if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) {
      throw new SourceError(
        `${this.spec.name}: record ${index} of the response has a "${field}" beyond 2^53, where JSON numbers ` +
          'lose digits: the API must send it as text',
        'permanent',
      );
    }
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    if (typeof value === 'string' && value !== '') return value;
    throw this.invalid(index, field, value);
  }

  /** Epoch milliseconds (a number or numeric text) or an ISO 8601 date-time. */
  private time(raw: unknown, index: number): number {
    const value = valueAt(raw, this.paths.time);
    const ms =
      typeof value === 'number'
        ? value
        : typeof value === 'string'
          ? isDecimal(value)
            ? Number(value)
            : (timestampMs(value) ?? Date.parse(value))
          : Number.NaN;
    if (!Number.isFinite(ms)) throw this.invalid(index, this.config.time, value);
    return Math.floor(ms);
  }

  private invalid(index: number, field: string, value: unknown): SourceError {
    const problem =
      value === undefined || value === null || value === ''
        ? `has no "${field}"`
        : `has an invalid "${field}": ${quote(JSON.stringify(value) ?? String(value))}`;
    return new SourceError(`${this.spec.name}: record ${index} of the response ${problem}`, 'permanent');
  }

  private scrub(text: string): string {
    return this.secrets.reduce((out, secret) => out.split(secret).join('***'), text);
  }
}

/** Characters of ids one request carries: far below the 8–16 kB request-line limits of common servers. */
const ID_CHARS_PER_REQUEST = 4_000;

function idChunks(ids: string[], most: number): string[][] {
  const chunks: string[][] = [];
  let chunk: string[] = [];
  let chars = 0;
  for (const id of ids) {
    const size = encodeURIComponent(id).length + 4;
    if (chunk.length > 0 && (chunk.length >= most || chars + size > ID_CHARS_PER_REQUEST)) {
      chunks.push(chunk);
      chunk = [];
      chars = 0;
    }
    chunk.push(id);
    chars += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

function result(records: SourceRecord[], done: boolean): FetchResult {
  const last = records.at(-1);
  return { records, last: last ? positionOf(last) : null, done };
}

function positionOf(record: Position): Position {
  return { cursor: record.cursor, id: record.id };
}

function samePosition(a: Position, b: Position): boolean {
  return a.cursor === b.cursor && a.id === b.id;
}

/** Tombstone flags come as booleans, numbers, timestamps or text: "false" and "0" mean alive. */
function isTruthy(value: unknown): boolean {
  if (typeof value === 'string') return value !== '' && value !== 'false' && value !== '0';
  return Boolean(value);
}

function label(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function numberOrNull(value: unknown): number | null {
  const number =
    typeof value === 'number' ? value : typeof value === 'string' && isDecimal(value) ? Number(value) : NaN;
  return Number.isFinite(number) ? number : null;
}

function quote(text: string): string {
  return text.length > QUOTE_LIMIT ? `${text.slice(0, QUOTE_LIMIT)}…` : text;
}
