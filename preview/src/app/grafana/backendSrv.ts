import { AppEvents, DataQueryErrorType, type EventBusSrv } from '@grafana/data';
import type { BackendSrv, BackendSrvRequest, FetchError, FetchResponse } from '@grafana/runtime';
import { Observable, Subject, filter, lastValueFrom, map, takeUntil, throwIfEmpty } from 'rxjs';

/**
 * Grafana's BackendSrv, as its documented contract and Grafana's implementation
 * (public/app/core/services/backend_srv.ts and core/utils/fetch.ts) define it:
 *
 * - local URLs lose their leading slash, so they resolve against `<base href>` (Grafana served
 *   from a sub path: the preview is served from /preview/), and carry `X-Grafana-Org-Id`;
 *   an `Authorization` header on a local call travels as `X-DS-Authorization`;
 * - `params` are serialized into the query string, undefined and empty values dropped;
 * - POST, PUT and PATCH default to `Content-Type: application/json`; an object body is sent
 *   as JSON when the content type is JSON, as a form otherwise; `Accept` defaults to
 *   `application/json, text/plain, *\/*`; credentials default to `same-origin`;
 * - a response body is parsed as JSON when it can be, else kept as text (or as `responseType`
 *   says);
 * - a non-2xx answer errors with a FetchError `{status, statusText, data, config}` whose `data`
 *   is always an object with a `message` (a text body becomes `{message, error, response}`);
 * - a new request with the same `requestId` cancels the one in flight, which then errors with
 *   `{cancelled: true, status: -1, type: 'cancelled'}`;
 * - error and success alerts follow `showErrorAlert`/`showSuccessAlert` (by default only for
 *   local, non data-query calls), published on the app event bus.
 *
 * What it leaves out: the request queue that caps concurrent calls, token rotation and the
 * 401 → login-ping → logout dance (the preview has no login), and the query inspector stream.
 */
export class PreviewBackendSrv implements BackendSrv {
  private readonly inFlight = new Subject<string>();

  constructor(
    private readonly events: EventBusSrv,
    private readonly orgId = 1,
  ) {}

  fetch<T>(options: BackendSrvRequest): Observable<FetchResponse<T>> {
    return new Observable<FetchResponse<T>>((subscriber) => {
      const request = this.parseRequestOptions({ ...options });
      if (request.requestId) this.inFlight.next(request.requestId);
      const abort = new AbortController();
      const signal = request.abortSignal
        ? AbortSignal.any([abort.signal, request.abortSignal])
        : abort.signal;
      const sub = new Observable<FetchResponse<T>>((inner) => {
        fetch(parseUrlFromOptions(request), { ...parseInitFromOptions(request), signal })
          .then(async (response) => {
            const data = await parseResponseBody<T>(response, request.responseType);
            const fetchResponse = toFetchResponse(response, data, request);
            if (!response.ok) throw this.processRequestError(request, toFetchError(fetchResponse));
            this.showSuccessAlert(fetchResponse);
            inner.next(fetchResponse);
            inner.complete();
          })
          .catch((err: unknown) => {
            if (abort.signal.aborted) return;
            // A network failure (server gone, connection refused) has no HTTP status: Grafana
            // reports it as status 0 with the browser's message.
            inner.error(
              isFetchErrorLike(err) ? err : this.processRequestError(request, networkError(err, request)),
            );
          });
      })
        .pipe(
          takeUntil(this.inFlight.pipe(filter((id) => id === request.requestId))),
          throwIfEmpty(
            (): FetchError =>
              ({
                type: DataQueryErrorType.Cancelled,
                cancelled: true,
                data: null,
                status: -1,
                statusText: 'Request was aborted',
                config: request,
              }) as FetchError,
          ),
        )
        .subscribe(subscriber);
      return () => {
        sub.unsubscribe();
        abort.abort();
      };
    });
  }

  /**
   * Every chunk of a long-lived response as it arrives (Grafana uses it for watch streams):
   * each emission is a FetchResponse with the response's headers and the chunk as `data`.
   * A non-2xx answer errors with a FetchError like `fetch`; unsubscribing aborts the request.
   */
  chunked(options: BackendSrvRequest): Observable<FetchResponse<Uint8Array | undefined>> {
    return new Observable<FetchResponse<Uint8Array | undefined>>((subscriber) => {
      const request = this.parseRequestOptions({ ...options });
      const abort = new AbortController();
      const signal = request.abortSignal
        ? AbortSignal.any([abort.signal, request.abortSignal])
        : abort.signal;
      (async () => {
        const response = await fetch(parseUrlFromOptions(request), {
          ...parseInitFromOptions(request),
          signal,
        });
        if (!response.ok) {
          const data = await parseResponseBody<unknown>(response, undefined);
          throw this.processRequestError(request, toFetchError(toFetchResponse(response, data, request)));
        }
        const reader = response.body?.getReader();
        if (!reader) {
          subscriber.next(toFetchResponse(response, undefined, request));
          subscriber.complete();
          return;
        }
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          subscriber.next(toFetchResponse(response, value, request));
        }
        subscriber.complete();
      })().catch((err: unknown) => {
        if (abort.signal.aborted) return;
        subscriber.error(
          isFetchErrorLike(err) ? err : this.processRequestError(request, networkError(err, request)),
        );
      });
      return () => abort.abort();
    });
  }

  async request<T = unknown>(options: BackendSrvRequest): Promise<T> {
    return lastValueFrom(this.fetch<T>(options).pipe(map((response) => response.data)));
  }

  /** @deprecated in Grafana too: the promise form of `fetch`. */
  async datasourceRequest<T = unknown>(options: BackendSrvRequest): Promise<FetchResponse<T>> {
    return lastValueFrom(this.fetch<T>(options));
  }

  get<T = unknown>(
    url: string,
    params?: BackendSrvRequest['params'],
    requestId?: string,
    options?: Partial<BackendSrvRequest>,
  ) {
    return this.request<T>({ ...options, method: 'GET', url, params, requestId });
  }

  delete<T = unknown>(url: string, data?: unknown, options?: Partial<BackendSrvRequest>) {
    return this.request<T>({ ...options, method: 'DELETE', url, data });
  }

  post<T = unknown>(url: string, data?: unknown, options?: Partial<BackendSrvRequest>) {
    return this.request<T>({ ...options, method: 'POST', url, data });
  }

  patch<T = unknown>(url: string, data?: unknown, options?: Partial<BackendSrvRequest>) {
    return this.request<T>({ ...options, method: 'PATCH', url, data });
  }

  put<T = unknown>(url: string, data?: unknown, options?: Partial<BackendSrvRequest>) {
    return this.request<T>({ ...options, method: 'PUT', url, data });
  }

  private parseRequestOptions(options: BackendSrvRequest): BackendSrvRequest {
    options.retry = options.retry ?? 0;
    if (isLocalUrl(options.url)) {
      const headers: Record<string, unknown> = { ...options.headers };
      headers['X-Grafana-Org-Id'] = this.orgId;
      if (options.url.startsWith('/')) options.url = options.url.substring(1);
      if (headers['Authorization']) {
        headers['X-DS-Authorization'] = headers['Authorization'];
        delete headers['Authorization'];
      }
      options.headers = headers;
    }
    return options;
  }

  /** Makes `data` an object with a `message`, as Grafana does, and raises the error alert it calls for. */
  private processRequestError(options: BackendSrvRequest, err: FetchError): FetchError {
    let data: unknown = err.data ?? { message: 'Unexpected error' };
    if (typeof data === 'string') data = { message: data, error: err.statusText, response: data };
    const body = data as { message?: unknown; error?: unknown };
    if (body && typeof body === 'object' && !body.message && typeof body.error === 'string')
      body.message = body.error;
    err.data = data;
    if (body && typeof body === 'object' && body.message) {
      setTimeout(() => {
        if (!err.isHandled) this.showErrorAlert(options, err);
      }, 50);
    }
    return err;
  }

  private showErrorAlert(options: BackendSrvRequest, err: FetchError): void {
    if (options.showErrorAlert === false) return;
    if (options.showErrorAlert === undefined && (isDataQuery(options.url) || !isLocalUrl(options.url)))
      return;
    let message = String((err.data as { message?: unknown }).message ?? '');
    let description = '';
    if (message === 'Unexpected error' && err.message) message = err.message;
    if (message.length > 80) {
      description = message;
      message = 'Error';
    }
    if (err.status === 422) {
      description = String((err.data as { message?: unknown }).message ?? '');
      message = 'Validation failed';
    }
    this.events.emit(err.status < 500 ? AppEvents.alertWarning : AppEvents.alertError, [
      message,
      description,
    ]);
  }

  private showSuccessAlert<T>(response: FetchResponse<T>): void {
    const { config } = response;
    if (config.showSuccessAlert === false) return;
    if (
      config.showSuccessAlert === undefined &&
      (config.method === 'GET' || isDataQuery(config.url) || !isLocalUrl(config.url))
    )
      return;
    const message = (response.data as { message?: unknown } | undefined)?.message;
    if (typeof message === 'string' && message) this.events.emit(AppEvents.alertSuccess, [message]);
  }
}

function isLocalUrl(url: string): boolean {
  return !/^https?:\/\//i.test(url);
}

/** Calls Grafana counts as data queries (no automatic alerts): the proxy, /api/ds/query, /api/tsdb. */
function isDataQuery(url: string): boolean {
  return (
    url.includes('api/datasources/proxy') || url.includes('api/tsdb/query') || url.includes('api/ds/query')
  );
}

export function serializeParams(params: Record<string, unknown>): string {
  return Object.keys(params)
    .map((key) => {
      const value = params[key];
      if (Array.isArray(value)) {
        return value.map((v) => `${encodeURIComponent(key)}=${encodeURIComponent(String(v))}`).join('&');
      }
      return `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`;
    })
    .join('&');
}

export function parseUrlFromOptions(options: BackendSrvRequest): string {
  const params = Object.fromEntries(
    Object.entries((options.params ?? {}) as Record<string, unknown>).filter(
      ([, v]) =>
        v !== undefined && !(v !== null && (typeof v === 'string' || Array.isArray(v)) && v.length === 0),
    ),
  );
  const query = serializeParams(params);
  return options.params && query.length ? `${options.url}?${query}` : options.url;
}

export function parseInitFromOptions(options: BackendSrvRequest): RequestInit {
  const headers = new Headers((options.headers ?? {}) as Record<string, string>);
  const method = options.method?.toLowerCase() ?? '';
  if (['post', 'put', 'patch'].includes(method) && !headers.has('content-type')) {
    headers.set('content-type', 'application/json');
  }
  if (!headers.has('accept')) headers.set('accept', 'application/json, text/plain, */*');
  const isJson = headers.get('content-type')?.toLowerCase() === 'application/json';
  let body: BodyInit | undefined;
  if (options.data !== undefined && options.data !== null && options.data !== '') {
    body =
      typeof options.data === 'string'
        ? options.data
        : isJson
          ? JSON.stringify(options.data)
          : new URLSearchParams(options.data as Record<string, string>);
  }
  const credentials: RequestCredentials =
    options.credentials ?? (options.withCredentials ? 'include' : 'same-origin');
  const init: RequestInit = { headers, credentials };
  if (options.method) init.method = options.method;
  if (body !== undefined) init.body = body;
  return init;
}

async function parseResponseBody<T>(
  response: Response,
  responseType: BackendSrvRequest['responseType'],
): Promise<T> {
  const type =
    responseType ??
    (response.headers.get('content-type')?.toLowerCase() === 'application/json' ? 'json' : undefined);
  switch (type) {
    case 'arraybuffer':
      return (await response.arrayBuffer()) as T;
    case 'blob':
      return (await response.blob()) as T;
    case 'text':
      return (await response.text()) as T;
    case 'json':
      if (response.headers.get('content-length') === '0') return {} as T;
      return (await response.json()) as T;
    default: {
      const text = await response.text();
      try {
        return JSON.parse(text) as T;
      } catch {
        return text as T;
      }
    }
  }
}

function toFetchResponse<T>(response: Response, data: T, config: BackendSrvRequest): FetchResponse<T> {
  const { status, statusText, ok, headers, url, type, redirected } = response;
  return { status, statusText, ok, headers, url, type, redirected, config, data };
}

function toFetchError(response: FetchResponse<unknown>): FetchError {
  const { status, statusText, data, config } = response;
  return { status, statusText, data, config };
}

function networkError(err: unknown, config: BackendSrvRequest): FetchError {
  const message = err instanceof Error ? err.message : String(err);
  return { status: 0, statusText: message, data: { message }, message, config };
}

function isFetchErrorLike(err: unknown): err is FetchError {
  return typeof err === 'object' && err !== null && 'status' in err && 'config' in err;
}
