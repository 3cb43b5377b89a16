import type { BackendSrv, BackendSrvRequest, FetchError, FetchResponse } from '@grafana/runtime';
import { Observable, isObservable, mergeMap, of, take, throwError } from 'rxjs';

/** What a test expects the data source to send: compared field by field, exactly (absent means absent). */
export interface ExpectedRequest {
  method: 'GET' | 'POST';
  url: string;
  params?: Record<string, unknown>;
  data?: unknown;
  headers?: Record<string, string>;
}

export interface Reply {
  status: number;
  data?: unknown;
  statusText?: string;
}

interface Expectation {
  request: ExpectedRequest;
  /** An Observable reply arrives when the test emits it: for states seen while a request is in flight. */
  reply: Reply | Observable<Reply>;
}

/**
 * A chunked() response the test feeds: each string (sent as UTF-8) or byte array is one chunk,
 * split wherever the test likes. `status` other than 2xx answers as Grafana does: the chunks
 * arrive with `ok: false`.
 */
export interface ChunkedReply {
  status?: number;
  chunks: Observable<string | Uint8Array>;
}

/** What became of one chunked() stream: tests assert that nothing is left open. */
export class ChunkedStream {
  subscribed = false;
  /** `unsubscribed` when the data source closed it, `complete`/`error` when the reply ended it. */
  closedBy: 'unsubscribed' | 'complete' | 'error' | undefined;

  get open(): boolean {
    return this.subscribed && this.closedBy === undefined;
  }
}

interface ChunkedExpectation {
  request: ExpectedRequest;
  reply: ChunkedReply;
  stream: ChunkedStream;
}

const describe = (r: Pick<BackendSrvRequest, 'method' | 'url' | 'params' | 'data' | 'headers'>) =>
  `${r.method ?? 'GET'} ${r.url} ${JSON.stringify({ params: r.params, data: r.data, headers: r.headers })}`;

/** JSON with object keys sorted, so equal values compare equal whatever order their keys were set in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}

const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

/**
 * A BackendSrv that answers only the requests a test announced, once each, in any order:
 * `expect` for fetch(), `expectChunked` for chunked() streams. Anything else is a failure:
 * the call throws, and `verify()` (run after every test) reports it even when the code under
 * test caught the throw, together with announced requests that never came and chunked
 * streams nobody closed.
 */
export class FakeBackendSrv implements BackendSrv {
  private readonly pending: Expectation[] = [];
  private readonly pendingChunked: ChunkedExpectation[] = [];
  private readonly chunkedStreams: Array<{ request: ExpectedRequest; stream: ChunkedStream }> = [];
  private readonly failures: string[] = [];

  expect(request: ExpectedRequest, reply: Reply | Observable<Reply>): this {
    this.pending.push({ request, reply });
    return this;
  }

  /** Announces one chunked() request; the handle says whether the stream was closed. */
  expectChunked(request: ExpectedRequest, reply: ChunkedReply): ChunkedStream {
    const stream = new ChunkedStream();
    this.pendingChunked.push({ request, reply, stream });
    return stream;
  }

  fetch<T>(options: BackendSrvRequest): Observable<FetchResponse<T>> {
    // Grafana shows no toast for a failed data query unless asked (BackendSrv's isDataQuery rule).
    if (
      options.showErrorAlert !== false &&
      !(options.showErrorAlert === undefined && isDataQuery(options.url))
    ) {
      this.fail(`request would pop Grafana's error toast (showErrorAlert not false): ${describe(options)}`);
    }
    const index = this.pending.findIndex(({ request }) => matches(request, options));
    const [match] = index >= 0 ? this.pending.splice(index, 1) : [];
    if (!match) this.fail(`unexpected request: ${describe(options)}`);
    const replies = isObservable(match.reply) ? match.reply : of(match.reply);
    return replies.pipe(
      take(1),
      mergeMap((reply) => respond<T>(reply, options)),
    );
  }

  chunked(options: BackendSrvRequest): Observable<FetchResponse<Uint8Array | undefined>> {
    if (options.showErrorAlert !== false) {
      this.fail(
        `chunked request would pop Grafana's error toast (showErrorAlert not false): ${describe(options)}`,
      );
    }
    const index = this.pendingChunked.findIndex(({ request }) => matches(request, options));
    const [match] = index >= 0 ? this.pendingChunked.splice(index, 1) : [];
    if (!match) this.fail(`unexpected chunked request: ${describe(options)}`);
    const { reply, stream } = match;
    this.chunkedStreams.push({ request: match.request, stream });
    const status = reply.status ?? 200;
    return new Observable<FetchResponse<Uint8Array | undefined>>((subscriber) => {
      stream.subscribed = true;
      const inner = reply.chunks.subscribe({
        next: (chunk) =>
          subscriber.next({
            ...responseOf(status, options),
            data: typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk,
          }),
        error: (err: unknown) => {
          stream.closedBy ??= 'error';
          subscriber.error(err);
        },
        complete: () => {
          stream.closedBy ??= 'complete';
          subscriber.complete();
        },
      });
      return () => {
        stream.closedBy ??= 'unsubscribed';
        inner.unsubscribe();
      };
    });
  }

  /**
   * Throws if anything unexpected happened, an announced request never came, or a chunked
   * stream was left open (a leaked connection).
   */
  verify(): void {
    const problems = [
      ...this.failures,
      ...this.pending.map(({ request }) => `expected but not sent: ${describe(request)}`),
      ...this.pendingChunked.map(({ request }) => `expected but not sent (chunked): ${describe(request)}`),
      ...this.chunkedStreams
        .filter(({ stream }) => stream.open)
        .map(({ request }) => `chunked stream left open: ${describe(request)}`),
    ];
    if (problems.length) throw new Error(`BackendSrv double:\n  ${problems.join('\n  ')}`);
  }

  private fail(message: string): never {
    this.failures.push(message);
    throw new Error(`BackendSrv double: ${message}`);
  }

  // The data source talks through fetch() and chunked() only; any other entry point is a failure.
  get<T>(url: string): Promise<T> {
    return this.fail(`get(${url}) called; use fetch`);
  }
  delete<T>(url: string): Promise<T> {
    return this.fail(`delete(${url}) called; use fetch`);
  }
  post<T>(url: string): Promise<T> {
    return this.fail(`post(${url}) called; use fetch`);
  }
  patch<T>(url: string): Promise<T> {
    return this.fail(`patch(${url}) called; use fetch`);
  }
  put<T>(url: string): Promise<T> {
    return this.fail(`put(${url}) called; use fetch`);
  }
  request<T>(options: BackendSrvRequest): Promise<T> {
    return this.fail(`request(${options.url}) called; use fetch`);
  }
  datasourceRequest<T>(options: BackendSrvRequest): Promise<FetchResponse<T>> {
    return this.fail(`datasourceRequest(${options.url}) called; use fetch`);
  }
}

const isDataQuery = (url: string) => url.includes('api/ds/query') || url.includes('api/tsdb/query');

function matches(request: ExpectedRequest, options: BackendSrvRequest): boolean {
  return (
    request.method === (options.method ?? 'GET') &&
    request.url === options.url &&
    same(request.params, options.params) &&
    same(request.data, options.data) &&
    same(request.headers, options.headers)
  );
}

function responseOf(status: number, options: BackendSrvRequest): Omit<FetchResponse, 'data'> {
  return {
    status,
    statusText: status < 400 ? 'OK' : 'Error',
    ok: status >= 200 && status < 300,
    headers: new Headers(),
    redirected: false,
    type: 'basic',
    url: options.url,
    config: options,
  };
}

function respond<T>(reply: Reply, options: BackendSrvRequest): Observable<FetchResponse<T>> {
  const statusText = reply.statusText ?? (reply.status < 400 ? 'OK' : 'Error');
  if (reply.status >= 200 && reply.status < 300) {
    return of({
      data: reply.data as T,
      status: reply.status,
      statusText,
      ok: true,
      headers: new Headers(),
      redirected: false,
      type: 'basic',
      url: options.url,
      config: options,
    });
  }
  const error: FetchError = { status: reply.status, statusText, data: reply.data, config: options };
  return throwError(() => error);
}
