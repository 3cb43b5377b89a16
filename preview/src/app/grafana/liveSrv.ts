import {
  type DataFrameJSON,
  type DataQueryResponse,
  type LiveChannelAddress,
  LiveChannelConnectionState,
  type LiveChannelEvent,
  LiveChannelEventType,
  type LiveChannelPresenceStatus,
  LoadingState,
  StreamingDataFrame,
  isValidLiveChannelAddress,
  toLiveChannelId,
} from '@grafana/data';
import {
  type BackendSrv,
  type GrafanaLiveSrv,
  type LiveDataStreamOptions,
  toDataQueryError,
} from '@grafana/runtime';
import { BehaviorSubject, Observable, Subject, filter, of } from 'rxjs';

/** A message from the preview's Live endpoint: a channel's DataFrameJSON, with or without schema. */
interface ChannelMessage {
  channel: string;
  data: DataFrameJSON;
}

let streamCounter = 0;

/**
 * Grafana Live for the browser, over the preview's Live endpoint instead of Centrifuge's
 * WebSocket: one EventSource per page carries every channel the page subscribes to (as one
 * WebSocket does in Grafana); subscribing and leaving are POSTs. On subscribing, the server
 * sends the channel's last frame with its schema, as Grafana's managed streams do; after that
 * each push arrives as data only, or with a schema when the schema changed.
 *
 * `getDataStream` follows Grafana's GrafanaLiveService: every subscriber gets its own
 * StreamingDataFrame (buffer options from `options.buffer`, seeded with `options.frame` when
 * given), and each message is emitted as `{key, state: Streaming, data: [frame]}`; a channel
 * error is emitted as `{state: Error, error: {message: 'Streaming channel error: …'}}`;
 * `filter.fields` keeps the named fields. Invalid addresses answer one Error packet.
 */
export class PreviewLiveSrv implements GrafanaLiveSrv {
  private readonly session = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  private readonly connected = new BehaviorSubject<boolean>(false);
  private readonly messages = new Subject<ChannelMessage>();
  private readonly errors = new Subject<{ channel: string; error: string }>();
  /** Channel id → how many subscribers, so the server is told once per channel. */
  private readonly refs = new Map<string, number>();
  /** The last message with a schema per channel, for subscribers that join later. */
  private readonly lastWithSchema = new Map<string, DataFrameJSON>();
  private source: EventSource | undefined;

  constructor(
    private readonly backendSrv: BackendSrv,
    private readonly orgId = 1,
  ) {}

  getConnectionState(): Observable<boolean> {
    this.connect();
    return this.connected.asObservable();
  }

  getStream<T>(address: LiveChannelAddress): Observable<LiveChannelEvent<T>> {
    const id = toLiveChannelId(address);
    return new Observable<LiveChannelEvent<T>>((subscriber) => {
      const sub = this.messages
        .pipe(filter((m) => m.channel === id))
        .subscribe((m) => subscriber.next({ type: LiveChannelEventType.Message, message: m.data as T }));
      const errSub = this.errors.pipe(filter((e) => e.channel === id)).subscribe((e) =>
        subscriber.next({
          type: LiveChannelEventType.Status,
          id,
          timestamp: Date.now(),
          state: LiveChannelConnectionState.Invalid,
          error: new Error(e.error),
        }),
      );
      const last = this.lastWithSchema.get(id);
      subscriber.next({
        type: LiveChannelEventType.Status,
        id,
        timestamp: Date.now(),
        state: this.connected.value
          ? LiveChannelConnectionState.Connected
          : LiveChannelConnectionState.Pending,
        ...(last ? { message: last } : {}),
      });
      this.retain(id);
      return () => {
        sub.unsubscribe();
        errSub.unsubscribe();
        this.release(id);
      };
    });
  }

  getDataStream(options: LiveDataStreamOptions): Observable<DataQueryResponse> {
    if (!isValidLiveChannelAddress(options.addr)) {
      return of({
        error: toDataQueryError(`invalid channel address: ${JSON.stringify(options.addr)}`),
        state: LoadingState.Error,
        data: options.frame ? [options.frame] : [],
      });
    }
    const key = options.key ?? `xstr/${streamCounter++}`;
    return new Observable<DataQueryResponse>((subscriber) => {
      let buffer: StreamingDataFrame | undefined = options.frame
        ? StreamingDataFrame.fromDataFrameJSON(options.frame, options.buffer)
        : undefined;
      const fields = options.filter?.fields;
      const emit = () => {
        if (!buffer) return;
        // Grafana filters fields on a shallow copy and keeps the length up to date.
        const frame = fields?.length
          ? { ...buffer, fields: buffer.fields.filter((f) => fields.includes(f.name)), length: buffer.length }
          : buffer;
        subscriber.next({ key, state: LoadingState.Streaming, data: [frame] });
      };
      const process = (message: DataFrameJSON) => {
        // With `buffer.action: replace` the frame itself keeps only the latest packet.
        if (!buffer) buffer = StreamingDataFrame.fromDataFrameJSON(message, options.buffer);
        else buffer.push(message);
        emit();
      };
      const sub = this.getStream<DataFrameJSON>(options.addr).subscribe((event) => {
        if (event.type === LiveChannelEventType.Message) {
          process(event.message);
        } else if (event.type === LiveChannelEventType.Status) {
          if (event.error) {
            const error = toDataQueryError(event.error);
            error.message = `Streaming channel error: ${error.message}`;
            subscriber.next({ key, state: LoadingState.Error, data: buffer ? [buffer] : [], error });
          } else if (event.message) {
            process(event.message as DataFrameJSON);
          }
        }
      });
      return () => sub.unsubscribe();
    });
  }

  async getPresence(_address: LiveChannelAddress): Promise<LiveChannelPresenceStatus> {
    throw new Error('Presence is not supported by the LiveSync preview');
  }

  publish(address: LiveChannelAddress, data: unknown): Promise<unknown> {
    return this.backendSrv.post('api/live/publish', { channel: toLiveChannelId(address), data });
  }

  private connect(): void {
    if (this.source) return;
    const source = new EventSource(`api/live/preview/events?session=${encodeURIComponent(this.session)}`);
    this.source = source;
    source.addEventListener('open', () => {
      this.connected.next(true);
      // After a reconnect the server has forgotten this session: subscribe again.
      for (const channel of this.refs.keys()) void this.send('subscribe', channel);
    });
    source.addEventListener('error', () => this.connected.next(false));
    source.addEventListener('message', (event: MessageEvent<string>) => {
      const message = JSON.parse(event.data) as ChannelMessage;
      if (message.data.schema) this.lastWithSchema.set(message.channel, message.data);
      this.messages.next(message);
    });
    source.addEventListener('channel-error', (event) => {
      this.errors.next(
        JSON.parse((event as MessageEvent<string>).data) as { channel: string; error: string },
      );
    });
  }

  private retain(channel: string): void {
    this.connect();
    const count = this.refs.get(channel) ?? 0;
    this.refs.set(channel, count + 1);
    if (count === 0 && this.connected.value) void this.send('subscribe', channel);
  }

  private release(channel: string): void {
    const count = (this.refs.get(channel) ?? 1) - 1;
    if (count > 0) {
      this.refs.set(channel, count);
      return;
    }
    this.refs.delete(channel);
    this.lastWithSchema.delete(channel);
    void this.send('unsubscribe', channel);
  }

  private async send(action: 'subscribe' | 'unsubscribe', channel: string): Promise<void> {
    try {
      await this.backendSrv.post(
        `api/live/preview/${action}`,
        { session: this.session, channel: `${this.orgId}/${channel}` },
        { showErrorAlert: false, showSuccessAlert: false },
      );
    } catch (err) {
      const message = (err as { data?: { message?: string } }).data?.message ?? String(err);
      this.errors.next({ channel, error: message });
    }
  }
}
