import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { liveChannel } from '../../src/live/grafana-push';
import { line } from '../../src/live/line-protocol';
import { harness, row, T0, type Harness } from '../http/harness';

interface Push {
  url: string;
  authorization: string | undefined;
  body: string;
}

/** Pushes of data changes (channel `events`), not of freshness (`events/freshness`). */
const isChange = (push: Push) => push.body.startsWith('events ');
const isFreshness = (push: Push) => push.body.startsWith('events/freshness ');

/** A freshness push's update, from its `json` field. */
function freshnessOfPush(push: Push): Record<string, unknown> {
  const json = /json="((?:[^"\\]|\\.)*)"/.exec(push.body)![1]!;
  return JSON.parse(json.replace(/\\(["\\])/g, '$1')) as Record<string, unknown>;
}

/** A stand-in for Grafana's Live push endpoint: records each request, answers as told (`n` counts pushes of that kind). */
async function fakeGrafana(answer: (n: number, push: Push) => number | 'hang') {
  const counts = new Map<boolean, number>();
  const pushes: Push[] = [];
  const waiters: (() => void)[] = [];
  const server: Server = createServer(async (req: IncomingMessage, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const push = { url: req.url!, authorization: req.headers.authorization, body };
    pushes.push(push);
    waiters.splice(0).forEach((w) => w());
    counts.set(isChange(push), (counts.get(isChange(push)) ?? 0) + 1);
    const status = answer(counts.get(isChange(push))!, push);
    if (status === 'hang') return;
    res.writeHead(status).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    pushes,
    /** Resolves once at least n pushes that pass `which` arrived. */
    until: (n: number, which: (push: Push) => boolean = isChange) =>
      new Promise<void>((resolve) => {
        const check = () => (pushes.filter(which).length >= n ? resolve() : waiters.push(check));
        check();
      }),
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Polls /metrics (bounded) until a line appears; returns the exposition. */
async function metricAppears(h: Harness, text: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const body = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
    if (body.includes(text)) return body;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`metrics never showed ${text}`);
}

function parseLine(text: string) {
  const [measurement, fields, ts] = text.trim().split(' ');
  return {
    measurement,
    fields: Object.fromEntries(fields!.split(',').map((kv) => kv.split('=') as [string, string])),
    ts: ts!,
  };
}

describe('line protocol', () => {
  it('writes integers, floats, strings and nanosecond timestamps, escaping names', () => {
    expect(line('my events', { a: { int: 3 }, b: 1.5, 'c d': 'x"y', e: true }, 1_764_000_000_123)).toBe(
      'my\\ events a=3i,b=1.5,c\\ d="x\\"y",e=true 1764000000123000000',
    );
  });

  it('keeps channel names within Grafana rules', () => {
    expect(liveChannel('livesync', 'events')).toBe('stream/livesync/events');
    expect(() => liveChannel('livesync', 'bad name')).toThrow('not a valid Grafana Live channel');
    expect(() => liveChannel('livesync', 'x'.repeat(160))).toThrow('not a valid Grafana Live channel');
  });
});

describe('Grafana Live push', () => {
  let h: Harness;
  let grafana: Awaited<ReturnType<typeof fakeGrafana>>;
  let dir: string;
  afterEach(async () => {
    await h.app.close();
    grafana.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('pushes each change as line protocol to the dataset channel, with the token from a file', async () => {
    grafana = await fakeGrafana(() => 200);
    dir = mkdtempSync(join(tmpdir(), 'livesync-token-'));
    writeFileSync(join(dir, 'token'), 'glsa_filetoken\n');
    h = await harness({
      grafanaLive: { url: grafana.url, tokenFile: join(dir, 'token'), streamId: 'livesync' },
    });
    await h.syncNow();
    h.source.rows.push(row(1, T0 + 5_000, 'US', 12.5), row(2, T0 + 6_000, 'DE', 7.5));
    await h.syncNow();
    await grafana.until(1);
    const push = grafana.pushes.find(isChange);
    expect(push!.url).toBe('/api/live/push/livesync');
    expect(push!.authorization).toBe('Bearer glsa_filetoken');
    const parsed = parseLine(push!.body);
    expect(parsed.measurement).toBe('events');
    expect(parsed.fields).toMatchObject({
      upserts: '2i',
      deletes: '0i',
      from: `${T0}i`,
      to: `${T0 + 60_000}i`,
      bucket_time: `${T0}i`,
      bucket_count: '2',
      bucket_sum_amount: '20',
    });
    expect(parsed.ts).toMatch(/^\d{19}$/);
    await metricAppears(h, 'livesync_live_pushes_total{channel="change",outcome="success"} 1');
  });

  it('coalesces bursts to at most one push per dataset per 250 ms, merging the ranges', async () => {
    grafana = await fakeGrafana(() => 200);
    h = await harness({ grafanaLive: { url: grafana.url, token: 't', streamId: 'livesync' } });
    await h.syncNow();
    // The pusher's clock and timers are jest's: a change every 100 ms of that clock, however
    // long each sync takes on this machine.
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'queueMicrotask'] });
    const pushedUpserts = () =>
      grafana.pushes
        .filter(isChange)
        .reduce((n, p) => n + Number(parseLine(p.body).fields.upserts!.slice(0, -1)), 0);
    let elapsed = 0;
    try {
      for (let i = 0; i < 8; i++) {
        h.source.rows.push(row(10 + i, T0 + i * 60_000, 'US', 1));
        await h.syncNow();
        await jest.advanceTimersByTimeAsync(100);
        elapsed += 100;
      }
      // Whatever is still merged is due at most 250 ms after the previous push.
      await jest.advanceTimersByTimeAsync(250);
      elapsed += 250;
    } finally {
      jest.useRealTimers();
    }
    // The pushes are on their way: wait for them to land (each arrival wakes the wait).
    while (pushedUpserts() < 8) await grafana.until(grafana.pushes.filter(isChange).length + 1);
    const changes = grafana.pushes.filter(isChange);
    expect(pushedUpserts()).toBe(8);
    expect(changes.length).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 1);
    expect(changes.length).toBeLessThan(8);
    const latest = changes
      .map((p) => parseLine(p.body).fields)
      .sort((a, b) => Number(a.version!.slice(0, -1)) - Number(b.version!.slice(0, -1)))
      .at(-1)!;
    expect(Number(latest.to!.slice(0, -1))).toBe(T0 + 8 * 60_000);
  });

  it('retries failed pushes with backoff and counts them', async () => {
    grafana = await fakeGrafana((n) => (n <= 2 ? 503 : 200));
    h = await harness({ grafanaLive: { url: grafana.url, token: 't', streamId: 'livesync' } });
    await h.syncNow();
    h.source.rows.push(row(1, T0, 'US', 1));
    await h.syncNow();
    await grafana.until(3);
    const text = await metricAppears(h, 'livesync_live_pushes_total{channel="change",outcome="success"} 1');
    expect(text).toContain('livesync_live_pushes_total{channel="change",outcome="failure"} 2');
    expect(new Set(grafana.pushes.filter(isChange).map((p) => p.body)).size).toBe(1);
  });

  it('pushes a freshness update to <dataset>/freshness when the sync state changes, the whole update as JSON', async () => {
    grafana = await fakeGrafana(() => 200);
    h = await harness({ grafanaLive: { url: grafana.url, token: 't', streamId: 'livesync' } });
    await h.syncNow();
    await grafana.until(1, (p) => isFreshness(p) && freshnessOfPush(p)['state'] === 'idle');
    h.source.failWith = { message: 'relation "events" does not exist', class: 'permanent' };
    await h.syncNow();
    await grafana.until(1, (p) => isFreshness(p) && freshnessOfPush(p)['state'] === 'failing');
    const push = grafana.pushes.filter(isFreshness).at(-1)!;
    expect(push.url).toBe('/api/live/push/livesync');
    expect(push.body).toMatch(/^events\/freshness state="failing",stale=false,incomplete=false,json="/);
    const update = freshnessOfPush(push);
    expect(update).toMatchObject({
      dataset: 'events',
      state: 'failing',
      incomplete: false,
      notice: { severity: 'warning', text: 'events: last error: relation "events" does not exist' },
      row: {
        dataset: 'events',
        state: 'failing',
        last_error: 'relation "events" does not exist',
        records: 0,
      },
    });
    await metricAppears(h, 'livesync_live_pushes_total{channel="freshness",outcome="success"}');
  });

  it('never holds up the sync, even when Grafana does not answer', async () => {
    grafana = await fakeGrafana(() => 'hang');
    h = await harness({ grafanaLive: { url: grafana.url, token: 't', streamId: 'livesync' } });
    await h.syncNow();
    for (let i = 0; i < 5; i++) {
      h.source.rows.push(row(100 + i, T0 + i * 1000, 'US', 1));
      await h.syncNow();
    }
    expect(h.sync.get('events')!.status()).toMatchObject({ state: 'idle', records: 5 });
  });
});

describe('server-sent events', () => {
  let h: Harness;
  afterEach(async () => h.app.close());

  async function open(h: Harness, path = '/api/datasets/events/events') {
    const address = await h.app.listen({ port: 0, host: '127.0.0.1' });
    const response = await fetch(`${address}${path}`);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    return {
      response,
      /** Reads until the stream holds `text`; resolves with everything read so far. */
      async until(text: string): Promise<string> {
        while (!buffer.includes(text)) {
          const { done, value } = await reader.read();
          if (done) throw new Error(`stream ended before "${text}"`);
          buffer += decoder.decode(value);
        }
        return buffer;
      },
      async ended(): Promise<boolean> {
        for (;;) {
          const { done } = await reader.read();
          if (done) return true;
        }
      },
    };
  }

  it('streams a hello, then every change of the dataset, with heartbeats, and ends cleanly on shutdown', async () => {
    h = await harness({ sseHeartbeatMs: 50 });
    await h.syncNow();
    const stream = await open(h);
    expect(stream.response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    await stream.until('event: hello');
    h.source.rows.push(row(1, T0 + 1000, 'US', 3));
    await h.syncNow();
    const text = await stream.until('event: change');
    const data = JSON.parse(/event: change\ndata: (.*)\n/.exec(text)![1]!);
    expect(data).toMatchObject({ dataset: 'events', upserts: 1, deletes: 0, from: T0, to: T0 + 60_000 });
    expect(text).toMatch(/id: \d+\nevent: change/);
    await stream.until(': heartbeat');
    const closing = h.app.close();
    expect(await stream.ended()).toBe(true);
    await closing;
  });

  it("greets with the dataset's freshness and sends every change of it", async () => {
    h = await harness();
    await h.syncNow();
    const stream = await open(h);
    const hello = JSON.parse(/event: hello\ndata: (.*)\n/.exec(await stream.until('event: hello'))![1]!);
    expect(hello.freshness).toMatchObject({
      dataset: 'events',
      state: 'idle',
      incomplete: false,
      notice: null,
    });
    expect(hello.freshness.row).toMatchObject({ dataset: 'events', state: 'idle', records: 0 });
    h.source.failWith = { message: 'relation "events" does not exist', class: 'permanent' };
    await h.syncNow();
    const text = await stream.until('"state":"failing"');
    const update = JSON.parse(/event: freshness\ndata: (.*"state":"failing".*)\n/.exec(text)![1]!);
    expect(update).toMatchObject({
      dataset: 'events',
      state: 'failing',
      notice: { text: 'events: last error: relation "events" does not exist' },
      row: { state: 'failing', error_class: 'permanent' },
    });
    await h.app.close();
  });

  it('answers 404 for an unknown dataset', async () => {
    h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/api/datasets/nope/events' });
    expect(res.statusCode).toBe(404);
  });
});
