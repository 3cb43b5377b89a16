import { Subject, VirtualTimeScheduler, from } from 'rxjs';
import { DEFAULT_RETRY_MS, type LiveEvent, sseEvents } from '../src/live/changes';
import { SseParser } from '../src/live/sse';
import { FakeBackendSrv } from './helpers/backendSrv';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('SseParser', () => {
  it("reads the service's stream: retry, hello, changes with ids, heartbeats", () => {
    const parser = new SseParser();
    const events = parser.push(
      'retry: 3000\n\n' +
        'event: hello\ndata: {"dataset":"orders","version":7}\n\n' +
        ': heartbeat\n\n' +
        'id: 8\nevent: change\ndata: {"version":8}\n\n',
    );
    expect(parser.retryMs).toBe(3000);
    expect(events).toEqual([
      { event: 'hello', data: '{"dataset":"orders","version":7}', id: '' },
      { event: 'change', data: '{"version":8}', id: '8' },
    ]);
  });

  it('puts events together across chunks split anywhere, even inside a UTF-8 character', () => {
    const text = 'id: 1\nevent: change\ndata: {"dataset":"café"}\n\nevent: hello\ndata: x\n\n';
    const all = bytes(text);
    // Every split point, one byte at a time included.
    for (let cut = 1; cut < all.length; cut++) {
      const parser = new SseParser();
      const events = [...parser.push(all.slice(0, cut)), ...parser.push(all.slice(cut))];
      expect(events).toEqual([
        { event: 'change', data: '{"dataset":"café"}', id: '1' },
        { event: 'hello', data: 'x', id: '1' },
      ]);
    }
    const parser = new SseParser();
    const oneByOne = Array.from(all).flatMap((b) => parser.push(new Uint8Array([b])));
    expect(oneByOne.map((e) => e.data)).toEqual(['{"dataset":"café"}', 'x']);
  });

  it('takes CRLF, CR and LF line ends, a CRLF split between chunks included', () => {
    const parser = new SseParser();
    expect(parser.push('data: a\r')).toEqual([]);
    expect(parser.push('\n\r\n')).toEqual([{ event: 'message', data: 'a', id: '' }]);
    // A CR last in a chunk may be half a CRLF: the blank line it ends counts once the next chunk shows.
    expect(parser.push('data: b\rdata: c\r\r')).toEqual([]);
    expect(parser.push('data: d\n\n')).toEqual([
      { event: 'message', data: 'b\nc', id: '' },
      { event: 'message', data: 'd', id: '' },
    ]);
  });

  it('follows the rules of EventSource for odd lines', () => {
    const parser = new SseParser();
    const events = parser.push(
      '\uFEFFdata\n\n' + // a field name alone: empty data, dispatched
        'event: nothing\n\n' + // no data: not dispatched, and the type does not leak into the next
        'data:no space\ndata:  two spaces\n\n' +
        'id: a\0b\ndata: x\n\n' + // an id with NUL is ignored
        'retry: soon\nunknown: field\ndata: y\n\n',
    );
    expect(events).toEqual([
      { event: 'message', data: '', id: '' },
      { event: 'message', data: 'no space\n two spaces', id: '' },
      { event: 'message', data: 'x', id: '' },
      { event: 'message', data: 'y', id: '' },
    ]);
    expect(parser.retryMs).toBeUndefined();
  });

  it('keeps an event without its blank line for the next chunk', () => {
    const parser = new SseParser();
    expect(parser.push('event: change\ndata: {"a":1}\n')).toEqual([]);
    expect(parser.push('\n')).toEqual([{ event: 'change', data: '{"a":1}', id: '' }]);
  });
});

describe('sseEvents', () => {
  const URL = '/api/datasources/proxy/uid/ls-uid/livesync/api/datasets/orders/events';
  const REQUEST = { method: 'GET' as const, url: URL, headers: { Accept: 'text/event-stream' } };
  const hello = (version: number, lastSyncAt: number | string | null = 1000) =>
    `event: hello\ndata: ${JSON.stringify({ dataset: 'orders', version, freshness: { lastSyncAt } })}\n\n`;
  const change = (version: number, from: number, to: number) =>
    `id: ${version}\nevent: change\ndata: ${JSON.stringify({ dataset: 'orders', version, from, to, upserts: 1, deletes: 0, at: 5 })}\n\n`;

  function follow(backendSrv: FakeBackendSrv) {
    const scheduler = new VirtualTimeScheduler();
    const events: LiveEvent[] = [];
    let completed = false;
    const subscription = sseEvents(backendSrv, {
      url: URL,
      describe: (err) => `failed: ${JSON.stringify(err)}`.slice(0, 40),
      scheduler,
    }).subscribe({ next: (e) => events.push(e), complete: () => (completed = true) });
    return { events, scheduler, subscription, completed: () => completed };
  }

  it('turns hello and change events into events, skips the rest, and closes the connection on unsubscribe', () => {
    const backendSrv = new FakeBackendSrv();
    const body = new Subject<string>();
    const stream = backendSrv.expectChunked(REQUEST, { chunks: body });
    const { events, subscription } = follow(backendSrv);

    body.next('retry: 3000\n\n' + hello(7).slice(0, 10));
    body.next(hello(7).slice(10) + change(8, 60_000, 120_000).slice(0, 30));
    body.next(change(8, 60_000, 120_000).slice(30) + ': heartbeat\n\n');
    body.next('event: change\ndata: not json\n\nevent: other\ndata: {}\n\n');
    body.next(hello(9, '2025-06-15T00:00:00.000Z'));
    expect(events).toEqual([
      { type: 'hello', version: 7, lastSyncAt: 1000 },
      { type: 'change', from: 60_000, to: 120_000, version: 8 },
      { type: 'hello', version: 9, lastSyncAt: Date.parse('2025-06-15T00:00:00.000Z') },
    ]);

    expect(stream.open).toBe(true);
    subscription.unsubscribe();
    expect(stream.closedBy).toBe('unsubscribed');
    backendSrv.verify();
  });

  it('reconnects after the delay the service asked for when the stream ends, and says so meanwhile', () => {
    const backendSrv = new FakeBackendSrv();
    const first = backendSrv.expectChunked(REQUEST, {
      chunks: from(['retry: 5000\n\n', hello(7), change(8, 0, 60_000)]),
    });
    const body = new Subject<string>();
    const second = backendSrv.expectChunked(REQUEST, { chunks: body });
    const { events, scheduler, subscription } = follow(backendSrv);

    expect(first.closedBy).toBe('complete');
    expect(events).toEqual([
      { type: 'hello', version: 7, lastSyncAt: 1000 },
      { type: 'change', from: 0, to: 60_000, version: 8 },
      { type: 'trouble', message: 'LiveSync closed the event stream; reconnecting in 5 s' },
    ]);
    expect(second.subscribed).toBe(false);

    scheduler.flush();
    expect(second.subscribed).toBe(true);
    body.next(hello(10));
    expect(events.slice(3)).toEqual([
      { type: 'recovered' },
      { type: 'hello', version: 10, lastSyncAt: 1000 },
    ]);

    subscription.unsubscribe();
    expect(second.closedBy).toBe('unsubscribed');
    backendSrv.verify();
  });

  it(`waits ${DEFAULT_RETRY_MS} ms when the service named no delay`, () => {
    const backendSrv = new FakeBackendSrv();
    backendSrv.expectChunked(REQUEST, { chunks: from([hello(7)]) });
    backendSrv.expectChunked(REQUEST, { chunks: new Subject<string>() });
    const { events, scheduler, subscription } = follow(backendSrv);
    expect(events[1]).toEqual({
      type: 'trouble',
      message: 'LiveSync closed the event stream; reconnecting in 3 s',
    });
    scheduler.flush();
    expect(scheduler.now()).toBe(DEFAULT_RETRY_MS);
    subscription.unsubscribe();
    backendSrv.verify();
  });

  it('gives up on a 4xx answer, and cancels a pending reconnect on unsubscribe', () => {
    const backendSrv = new FakeBackendSrv();
    backendSrv.expectChunked(REQUEST, { status: 404, chunks: from(['{"message":"unknown dataset"}']) });
    const gone = follow(backendSrv);
    expect(gone.events).toEqual([{ type: 'trouble', message: expect.stringMatching(/^failed: /) }]);
    expect(gone.completed()).toBe(true);
    backendSrv.verify();

    const flaky = new FakeBackendSrv();
    flaky.expectChunked(REQUEST, { status: 502, chunks: from(['Bad Gateway']) });
    const retrying = follow(flaky);
    expect(retrying.events).toEqual([
      { type: 'trouble', message: expect.stringMatching(/reconnecting in 3 s$/) },
    ]);
    retrying.subscription.unsubscribe();
    // The reconnect timer went with the subscription: nothing more is asked for.
    retrying.scheduler.flush();
    flaky.verify();
  });
});
