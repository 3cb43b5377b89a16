/** One dispatched server-sent event. */
export interface SseEvent {
  /** `message` when the stream names none. */
  event: string;
  data: string;
  /** The last event id seen so far, as EventSource keeps it. */
  id: string;
}

/**
 * An incremental `text/event-stream` parser, following the WHATWG rules EventSource follows:
 * lines end in CRLF, LF or CR; `:` starts a comment; `data` lines join with newlines; an empty
 * line dispatches (an event without data is not dispatched); `retry` takes digits only; an id
 * with NUL is ignored. Bytes go in as they arrive, split anywhere, even inside a UTF-8 sequence.
 */
export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private buffer = '';
  private started = false;
  private eventType = '';
  private data: string[] = [];
  private lastId = '';
  /** The reconnection delay the server asked for, in ms. */
  retryMs: number | undefined;

  /** Feeds a chunk of the body; returns the events it completed. */
  push(chunk: Uint8Array | string): SseEvent[] {
    let text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.startsWith('\uFEFF')) text = text.slice(1);
    }
    this.buffer += text;
    const events: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      // A CR at the very end may be the first half of a CRLF split across chunks: wait for more.
      if (c === '\r' && i === this.buffer.length - 1) break;
      const event = this.line(this.buffer.slice(start, i));
      if (event) events.push(event);
      if (c === '\r' && this.buffer[i + 1] === '\n') i++;
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
    }
    return undefined;
  }

  private dispatch(): SseEvent | undefined {
    const type = this.eventType;
    const data = this.data;
    this.eventType = '';
    this.data = [];
    if (data.length === 0) return undefined;
    return { event: type || 'message', data: data.join('\n'), id: this.lastId };
  }
}
