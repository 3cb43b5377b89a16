import type { DataQueryResponse, LiveChannelAddress } from '@grafana/data';
import type { GrafanaLiveSrv, LiveDataStreamOptions } from '@grafana/runtime';
import { Observable, Subject } from 'rxjs';

const channelOf = (addr: LiveChannelAddress) => `${addr.scope}/${addr.stream}/${addr.path}`;

/**
 * A GrafanaLiveSrv whose channels are Subjects the test pushes packets into. It counts who
 * listens, so a test can see that unsubscribing left no channel open; `verify()` (after every
 * test) fails on an open one and on any call other than getDataStream.
 */
export class FakeLiveSrv implements GrafanaLiveSrv {
  private readonly channels = new Map<string, Subject<DataQueryResponse>>();
  private readonly listeners = new Map<string, number>();
  private readonly failures: string[] = [];
  /** Every getDataStream call, in order. */
  readonly requests: LiveDataStreamOptions[] = [];

  getDataStream(options: LiveDataStreamOptions): Observable<DataQueryResponse> {
    this.requests.push(options);
    const channel = channelOf(options.addr);
    return new Observable<DataQueryResponse>((subscriber) => {
      this.listeners.set(channel, this.listenersOf(channel) + 1);
      const sub = this.subject(channel).subscribe(subscriber);
      return () => {
        this.listeners.set(channel, this.listenersOf(channel) - 1);
        sub.unsubscribe();
      };
    });
  }

  /** Sends a packet to everyone on `stream/<stream>/<path>`, as Grafana's live service would. */
  push(channel: string, packet: DataQueryResponse): void {
    this.subject(channel).next(packet);
  }

  /** Ends a channel with an error, as a broken Live connection would. */
  fail(channel: string, error: unknown): void {
    this.subject(channel).error(error);
  }

  listenersOf(channel: string): number {
    return this.listeners.get(channel) ?? 0;
  }

  verify(): void {
    const open = [...this.listeners].filter(([, n]) => n > 0).map(([c, n]) => `${c} has ${n} listener(s)`);
    const problems = [...this.failures, ...open];
    if (problems.length) throw new Error(`GrafanaLiveSrv double:\n  ${problems.join('\n  ')}`);
  }

  private subject(channel: string): Subject<DataQueryResponse> {
    let subject = this.channels.get(channel);
    if (!subject) {
      subject = new Subject();
      this.channels.set(channel, subject);
    }
    return subject;
  }

  private unexpected(what: string): never {
    this.failures.push(`${what} called`);
    throw new Error(`GrafanaLiveSrv double: ${what} called`);
  }

  getConnectionState(): Observable<boolean> {
    return this.unexpected('getConnectionState');
  }
  getStream<T>(): Observable<never & T> {
    return this.unexpected('getStream');
  }
  getPresence(): never {
    return this.unexpected('getPresence');
  }
  publish(): Promise<unknown> {
    return this.unexpected('publish');
  }
}
