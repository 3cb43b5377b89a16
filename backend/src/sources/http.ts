import type { DatasetSpec } from '../config/dataset';
import { parseDuration } from '../config/duration';
import type { HttpSourceConfig } from '../config/schema';
import { messageOf, messageWithCauses } from './error-text';
import { parsePath, valueAt, type JsonPath } from './json-path';
import { comparePositions, isDecimal } from './order';
import {
  SourceError,
  type FetchRequest,
  type FetchResult,
  type Position,
  type Source,
  type SourceRecord,
} from './types';

/** Query parameters; a list repeats the parameter (`?id=1&id=2`). */
type Params = Record<string, string | string[]>;

interface FieldPaths {
  id: JsonPath;
  time: JsonPath;
  cursor: JsonPath;
  deleted: JsonPath | null;
  dims: JsonPath[];
  metrics: JsonPath[];
  distinct: JsonPath[];
}

/** How much of an offending value an error message quotes. */
const QUOTE_LIMIT = 60;

/**
 * Reads a JSON API page by page. The API is asked for records with cursor >= the last one
 * read, so pages may repeat records already delivered: those are dropped by `compare`, and
 * whatever slips through is harmless because the store upserts by id.
 */
export class HttpSource implements Source {
  readonly kind = 'http';
  private readonly timeoutMs: number;
  private readonly paths: FieldPaths;
  private readonly recordsPath: JsonPath;
  /** Header values may hold secrets: they are scrubbed from every message. */
  private readonly secrets: string[];
  /** The request that continues after the last batch, while the API's own paging is in use. */
  private resume: { position: Position; params: Params } | null = null;

  constructor(
    private readonly spec: DatasetSpec,
    private readonly config: HttpSourceConfig,
  ) {
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
    this.secrets = Object.values(config.headers).filter((value) => value !== '');
  }

  async fetch(request: FetchRequest): Promise<FetchResult> {
    const rewinding = request.after !== null && this.rewoundCursor(request) !== null;
    let params = this.firstParams(request);
    // A saved continuation is used up by this fetch, or obsolete.
    this.resume = null;
    let floor = rewinding ? null : request.after;
    const records: SourceRecord[] = [];
    for (;;) {
      const body = await this.get(params, request.signal);
      const page = this.recordsIn(body).map((raw, index) => this.toRecord(raw, index));
      page.sort((a, b) => this.compare(a, b));
      const fresh = page.filter((record) => floor === null || this.compare(record, floor) > 0);
      records.push(...fresh);
      floor = fresh.at(-1) ?? floor;
      const next = this.nextParams(params, page, body, request.limit);
      if (next === null) return result(records, true);
      if (sameParams(next, params)) {
        if (fresh.length === 0) throw this.stuck(page, request.limit);
        return result(records, false);
      }
      if (records.length >= request.limit && floor !== null) {
        this.resume = { position: positionOf(floor), params: next };
        return result(records, false);
      }
      params = next;
    }
  }

  /**
   * Asks for the ids by `idParam`, repeated (`?id=1&id=2`), a few at a time (URLs stay short,
   * requests no larger than a sync batch). An API that answers records not asked for ignores
   * the parameter: the missing ones cannot be told from deleted ones, so that is an error.
   */
  async existing(ids: string[], signal?: AbortSignal): Promise<Set<string>> {
    const param = this.config.idParam;
    if (param === undefined) {
      const message = `${this.spec.name}: source.idParam is not set: deletes cannot be found`;
      throw new SourceError(message, 'permanent', { origin: 'config' });
    }
    const found = new Set<string>();
    for (const chunk of idChunks(ids, this.spec.sync.batchSize)) {
      const body = await this.get({ [this.config.limitParam]: String(chunk.length), [param]: chunk }, signal);
      const asked = new Set(chunk);
      this.recordsIn(body).forEach((raw, index) => {
        const id = this.key(raw, index, this.config.id, this.paths.id);
        if (!asked.has(id)) {
          throw new SourceError(
            `${this.spec.name}: asked for ${chunk.length} ids by "${param}", the API answered record "${quote(id)}" too: ` +
              `it does not filter by that parameter, so deletes cannot be found`,
            'permanent',
            { origin: 'config' },
          );
        }
        found.add(id);
      });
    }
    return found;
  }

  compare(a: Position, b: Position): number {
    return comparePositions(a, b);
  }

  async close(): Promise<void> {
    this.resume = null;
  }

  private firstParams(request: FetchRequest): Params {
    const { after } = request;
    const resume = this.resume;
    if (after !== null && request.rewindMs === undefined && resume && samePosition(resume.position, after)) {
      return resume.params;
    }
    const params: Params = { [this.config.limitParam]: String(request.limit) };
    const since = after === null ? null : (this.rewoundCursor(request) ?? after.cursor);
    if (since !== null) params[this.config.cursorParam] = since;
    if (this.config.pagination.kind === 'page') params[this.config.pagination.pageParam] = '1';
    return params;
  }

  /**
   * Only a date-time cursor can be moved back by milliseconds; a numeric cursor may be a
   * sequence rather than a time, so rewindMs is ignored for it.
   */
  private rewoundCursor(request: FetchRequest): string | null {
    const { after, rewindMs } = request;
    if (after === null || rewindMs === undefined || isDecimal(after.cursor)) return null;
    const ms = Date.parse(after.cursor);
    return Number.isNaN(ms) ? null : new Date(ms - rewindMs).toISOString();
  }

  /** The request for the page after this one, or null when the upstream has nothing more. */
  private nextParams(params: Params, page: SourceRecord[], body: unknown, limit: number): Params | null {
    const pagination = this.config.pagination;
    const last = page.at(-1);
    if (last === undefined) return null;
    if (pagination.kind === 'cursor') {
      const token = valueAt(body, parsePath(pagination.nextPath));
      if (token === undefined || token === null || token === '') return null;
      return { ...params, [this.config.cursorParam]: String(token) };
    }
    if (page.length < limit) return null;
    if (pagination.kind === 'page') {
      return { ...params, [pagination.pageParam]: String(Number(params[pagination.pageParam] ?? '1') + 1) };
    }
    return { ...params, [this.config.cursorParam]: last.cursor };
  }

  private stuck(page: SourceRecord[], limit: number): SourceError {
    const cursor = page.at(-1)?.cursor ?? '';
    return new SourceError(
      `${this.spec.name}: the API keeps returning the same ${page.length} records (cursor "${quote(cursor)}"); ` +
        `more than ${limit} records may share one cursor value: use cursor or page pagination`,
      'permanent',
    );
  }

  private async get(params: Params, signal?: AbortSignal): Promise<unknown> {
    const url = new URL(this.config.url);
    for (const [name, value] of Object.entries(params))
      for (const one of [value].flat()) url.searchParams.append(name, one);
    // Never the query string: it may carry an API key.
    const where = `GET ${url.origin}${url.pathname}`;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    let text: string;
    try {
      const response = await fetch(url, {
        headers: { accept: 'application/json', ...this.config.headers },
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      if (!response.ok) {
        await response.body?.cancel();
        throw this.statusError(where, response);
      }
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
      return JSON.parse(text);
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
            : Date.parse(value)
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

function sameParams(a: Params, b: Params): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
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
