import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { LightMyRequestResponse } from 'fastify';
import { redisStore } from '../helpers';
import { harness, MIN, row, T0, type Harness } from './harness';

const metricsBody = {
  range: { from: T0, to: T0 + 60 * MIN },
  intervalMs: MIN,
  maxDataPoints: 1000,
  queries: [{ refId: 'A', dataset: 'events', aggregations: ['count', 'sum(amount)'], groupBy: ['country'] }],
};

const decode: Record<string, (body: Buffer) => Buffer> = {
  gzip: gunzipSync,
  br: brotliDecompressSync,
};

/** The JSON of an answer, decoded as its Content-Encoding says. */
function json(res: LightMyRequestResponse): unknown {
  const encoding = res.headers['content-encoding'] as string | undefined;
  const bytes = encoding ? decode[encoding]!(res.rawPayload) : res.rawPayload;
  return JSON.parse(bytes.toString('utf8'));
}

describe('compressed answers (real Redis)', () => {
  let h: Harness;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    const redis = await redisStore();
    cleanup = redis.cleanup;
    h = await harness({ store: redis.store });
    // Enough rows for an answer well above the 1 KB below which nothing is compressed.
    for (let i = 0; i < 60; i++)
      for (const [j, country] of ['US', 'DE', 'FR', 'BR'].entries())
        h.source.rows.push(row(i * 4 + j + 1, T0 + i * MIN + j, country, i + j));
    await h.syncNow();
  });
  afterEach(async () => {
    await h.app.close();
    await cleanup();
  });

  const query = (headers: Record<string, string> = {}, body: object = metricsBody) =>
    h.app.inject({ method: 'POST', url: '/api/query', payload: body, headers });

  it('answers gzip and br when asked, decoding to the same JSON as the identity answer', async () => {
    const plain = await query();
    expect(plain.statusCode).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.rawPayload.length).toBeGreaterThan(1024);
    for (const encoding of ['gzip', 'br']) {
      const res = await query({ 'accept-encoding': encoding });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-encoding']).toBe(encoding);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.rawPayload.length).toBeLessThan(plain.rawPayload.length);
      expect(json(res)).toEqual(plain.json());
    }
  });

  it('prefers br when both are accepted, follows q-values, and sends identity when nothing usable is accepted', async () => {
    expect((await query({ 'accept-encoding': 'gzip, deflate, br' })).headers['content-encoding']).toBe('br');
    expect((await query({ 'accept-encoding': 'br;q=0.5, gzip' })).headers['content-encoding']).toBe('gzip');
    for (const accept of ['identity', 'deflate', 'br;q=0, gzip;q=0']) {
      const res = await query({ 'accept-encoding': accept });
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(res.json().results.A.frames).toHaveLength(4);
    }
  });

  it('says the answer varies with Accept-Encoding, whichever coding went out', async () => {
    for (const headers of [{}, { 'accept-encoding': 'gzip' }, { 'accept-encoding': 'br' }] as Record<
      string,
      string
    >[]) {
      expect((await query(headers)).headers.vary).toMatch(/accept-encoding/i);
    }
  });

  it('sends the compressed bytes made the first time for a cached answer', async () => {
    const first = await query({ 'accept-encoding': 'gzip' });
    const again = await query({ 'accept-encoding': 'gzip' });
    expect(again.headers['x-cache']).toBe('HIT');
    expect(again.rawPayload.equals(first.rawPayload)).toBe(true);
    // A change in the range is a new answer, compressed anew.
    h.source.rows.push(row(1000, T0 + 5 * MIN, 'US', 1000, 1000));
    await h.syncNow();
    const changed = await query({ 'accept-encoding': 'gzip' });
    expect(changed.headers['x-cache']).toBe('MISS');
    expect(json(changed)).not.toEqual(json(first));
    expect(json(changed)).toEqual((await query()).json());
  });

  it('keeps ETag and 304 working with compression: one validator for every coding', async () => {
    const gz = await query({ 'accept-encoding': 'gzip' });
    const plain = await query();
    expect(gz.headers.etag).toBe(plain.headers.etag);
    for (const accept of ['gzip', 'br', 'identity']) {
      const res = await query({ 'accept-encoding': accept, 'if-none-match': gz.headers.etag as string });
      expect(res.statusCode).toBe(304);
      expect(res.rawPayload.length).toBe(0);
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(res.headers.vary).toMatch(/accept-encoding/i);
    }
  });

  it('compresses answers built for one request only (freshness) too', async () => {
    const body = {
      ...metricsBody,
      queries: [...metricsBody.queries, { refId: 'F', kind: 'freshness' }],
    };
    const plain = (await query({}, body)).json();
    const res = await query({ 'accept-encoding': 'br' }, body);
    expect(res.headers['content-encoding']).toBe('br');
    expect(json(res)).toEqual(plain);
  });

  it('compresses other routes through @fastify/compress', async () => {
    await query();
    const res = await h.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { 'accept-encoding': 'gzip' },
    });
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(res.rawPayload).toString()).toContain('livesync_cache_requests_total');
  });

  it('never compresses the server-sent event stream, which still streams', async () => {
    const address = await h.app.listen({ port: 0, host: '127.0.0.1' });
    const controller = new AbortController();
    const response = await fetch(`${address}/api/datasets/events/events`, {
      headers: { 'accept-encoding': 'gzip, br' },
      signal: controller.signal,
    });
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('content-encoding')).toBeNull();
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('event: hello')) text += decoder.decode((await reader.read()).value);
    h.source.rows.push(row(2000, T0 + MIN, 'US', 1, 2000));
    await h.syncNow();
    while (!text.includes('event: change')) text += decoder.decode((await reader.read()).value);
    controller.abort();
  });
});
