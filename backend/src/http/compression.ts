import { negotiate } from '@fastify/accept-negotiator';
import compress from '@fastify/compress';
import type { FastifyInstance } from 'fastify';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';

/** The content codings offered, preferred first when a client accepts both equally. */
export const ENCODINGS = ['br', 'gzip'] as const;
export type Encoding = (typeof ENCODINGS)[number];

/** Bodies smaller than this go out as they are: the headers would cost more than the saving. */
const THRESHOLD_BYTES = 1024;

/**
 * Brotli quality 4 (@fastify/compress's own recommendation): about gzip's speed and a
 * smaller result; zlib's default of 11 costs many times the CPU for a few percent.
 */
const BROTLI = { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } };

const encoders: Record<Encoding, (body: Buffer) => Promise<Buffer>> = {
  br: (body) => promisify(brotliCompress)(body, BROTLI),
  gzip: (body) => promisify(gzip)(body),
};

/**
 * `@fastify/compress` for every route: it compresses what a route sends when the client
 * asks (Accept-Encoding) and leaves alone a reply that already carries Content-Encoding,
 * which is how `/api/query` sends the encoded bytes it keeps ({@link EncodedBodies}).
 * Server-sent events are never compressed: the stream is hijacked and its type excluded.
 */
export async function registerCompression(app: FastifyInstance): Promise<void> {
  await app.register(compress, {
    encodings: [...ENCODINGS],
    threshold: THRESHOLD_BYTES,
    brotliOptions: BROTLI,
  });
}

/** The coding for a request's Accept-Encoding, negotiated as @fastify/compress does; null means identity. */
export function chooseEncoding(acceptEncoding: string | string[] | undefined): Encoding | null {
  if (typeof acceptEncoding !== 'string' || acceptEncoding === '') return null;
  // `*` and `x-gzip` stand for gzip (RFC 9110 §12.5.3), as in @fastify/compress.
  const header = acceptEncoding.toLowerCase().replace(/\*|x-gzip/g, 'gzip');
  return negotiate<Encoding>(header, [...ENCODINGS]);
}

interface Entry {
  identity: Buffer;
  encoded: Partial<Record<Encoding, Promise<Buffer>>>;
  bytes: number;
}

/**
 * Answer bodies by name, as bytes and in each coding asked for, least recently used out
 * first and bounded in bytes. A body is named by what it was made from (query/service.ts
 * `bodyKey`), so a repeated answer is sent as the bytes made the first time: no string to
 * assemble and encode to UTF-8, and no compression per request (compressing 450 KB of JSON
 * costs several ms). Compression runs on libuv's thread pool, off the event loop, once per
 * body and coding however many requests ask at once.
 */
export class EncodedBodies {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(private readonly maxBytes = 64 * 2 ** 20) {}

  /** The body named `key` (null: made for this request only) in `encoding`; `render` makes it. */
  async get(
    key: string | null,
    encoding: Encoding | null,
    render: () => string,
  ): Promise<{ body: Buffer; encoding: Encoding | null }> {
    const entry = (key !== null && this.touch(key)) || this.add(key, Buffer.from(render()));
    if (encoding === null || entry.identity.length < THRESHOLD_BYTES) {
      return { body: entry.identity, encoding: null };
    }
    let encoded = entry.encoded[encoding];
    if (!encoded) {
      encoded = encoders[encoding](entry.identity);
      entry.encoded[encoding] = encoded;
      void encoded.then(
        (body) => this.grow(key, entry, body.length),
        () => delete entry.encoded[encoding],
      );
    }
    return { body: await encoded, encoding };
  }

  private touch(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry) {
      // Re-insert so iteration order is least recently used first.
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }

  private add(key: string | null, identity: Buffer): Entry {
    const entry: Entry = { identity, encoded: {}, bytes: 0 };
    // A body larger than a quarter of the bound would push out most of the others: not kept.
    if (key !== null && identity.length <= this.maxBytes / 4) {
      this.entries.set(key, entry);
      this.grow(key, entry, identity.length);
    }
    return entry;
  }

  private grow(key: string | null, entry: Entry, bytes: number): void {
    if (key === null || this.entries.get(key) !== entry) return;
    entry.bytes += bytes;
    this.bytes += bytes;
    for (const [oldest, old] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= old.bytes;
    }
  }
}
