import {
  type DataFrame,
  type DataQueryResponse,
  LoadingState,
  type QueryResultMetaNotice,
} from '@grafana/data';
import { Observable, Subscription } from 'rxjs';
import type { LiveEvent } from './changes';
import { shownOf, shownOfFrames, skewOf, withFreshness } from './freshness';
import { mergeTouched } from './merge';
import { type Span, alignDown, alignUp, overlaps, union } from './range';

/** The service's answer for one query over a touched span; failures are words, never errors. */
export type TouchedAnswer = { frames: DataFrame[] } | { error: string };

export interface FollowOptions {
  /** The packet key: the query's own, so that each update replaces the one before. */
  key: string;
  /** The frames of the answer the panel shows. */
  initial: DataFrame[];
  /** The dataset's last sync as that answer saw it: changes committed before it are in it. */
  since: number | undefined;
  /** The dataset's data version the answer was read at (`meta.custom.version`), when the service sent it. */
  version?: number;
  /** The answer's step: touched spans are widened to whole steps. */
  stepMs: number;
  /** The dataset's changes. */
  events: Observable<LiveEvent>;
  /** The panel's range as it stands now (it moves while the range ends at now). */
  window: () => Span;
  /** Asks the service for the query over a span (step-aligned). */
  fetchSpan: (span: Span) => Observable<TouchedAnswer>;
  /** When the answer arrived, on `now`'s clock: with its age it tells the service's clock. */
  receivedAt?: number;
  /** This browser's clock. */
  now?: () => number;
}

/**
 * Keeps one query's frames up to date: on a change that touches the panel's range it asks for
 * the touched steps only, merges them in, and emits the frames as a Streaming packet. One
 * request at a time: changes that arrive meanwhile are gathered into a single follow-up. A
 * freshness update of the dataset replaces the frames' freshness, and sends them again when
 * their notice changes (stale, failing, incomplete, and back).
 * Problems (a lost stream, a failed request) become a warning on the frames, never an error.
 * Unsubscribing closes the change stream and cancels the request in flight.
 */
export function followQuery(options: FollowOptions): Observable<DataQueryResponse> {
  const { stepMs } = options;
  return new Observable<DataQueryResponse>((subscriber) => {
    const subscriptions = new Subscription();
    let frames = options.initial;
    let pending: Span | undefined;
    /** A span whose request failed: asked again with the next change. */
    let failed: Span | undefined;
    let busy = false;
    let ended = false;
    let streamProblem: string | undefined;
    let requestProblem: string | undefined;
    /** The dataset's data version as far as the change stream told. */
    let version: number | undefined = options.version;
    const now = options.now ?? Date.now;
    const skew = skewOf(options.initial, options.receivedAt ?? now()) ?? 0;
    let shown = shownOfFrames(frames);

    const emit = (state: LoadingState) => {
      const problems = [streamProblem, requestProblem].filter((p): p is string => Boolean(p));
      subscriber.next({ data: withWarnings(frames, problems), key: options.key, state });
    };

    const settle = () => {
      if (busy) return;
      if (pending) {
        run(pending);
      } else if (ended) {
        emit(LoadingState.Done);
        subscriber.complete();
      }
    };

    const fail = (span: Span, problem: string) => {
      failed = union(failed, span);
      requestProblem = `Live update failed: ${problem}`;
    };

    const run = (span: Span) => {
      pending = undefined;
      busy = true;
      let request: Subscription | undefined = undefined;
      const done = () => {
        busy = false;
        if (request) subscriptions.remove(request);
        settle();
      };
      request = options.fetchSpan(span).subscribe({
        next: (answer) => {
          const problem = 'error' in answer ? answer.error : stepProblem(answer.frames, stepMs);
          if (problem !== undefined) {
            fail(span, problem);
          } else if ('frames' in answer) {
            requestProblem = undefined;
            frames = mergeTouched(frames, answer.frames, span, alignDown(options.window().from, stepMs));
            shown = shownOfFrames(frames);
          }
          emit(LoadingState.Streaming);
        },
        error: (err: unknown) => {
          fail(span, err instanceof Error ? err.message : String(err));
          emit(LoadingState.Streaming);
          done();
        },
        complete: done,
      });
      if (!request.closed) subscriptions.add(request);
    };

    const touch = (span: Span) => {
      pending = union(union(pending, span), failed ?? span);
      failed = undefined;
      settle();
    };

    subscriptions.add(
      options.events.subscribe({
        next: (event) => {
          const range = options.window();
          switch (event.type) {
            case 'change': {
              // Already in the answer (or in a merge since): nothing to ask for.
              if (options.version !== undefined && event.version <= options.version) return;
              if (Number.isFinite(event.version)) version = event.version;
              // A change outside the panel's range costs nothing.
              if (!overlaps(event, range)) return;
              touch({
                from: alignDown(Math.max(event.from, range.from), stepMs),
                to: alignUp(Math.min(event.to, range.to), stepMs),
              });
              return;
            }
            case 'hello': {
              // Changes may have been missed: while reconnecting (the version moved on), or
              // between the answer and the subscription (a sync finished after the answer).
              const missed =
                version !== undefined
                  ? event.version !== version
                  : options.since !== undefined &&
                    event.lastSyncAt !== undefined &&
                    event.lastSyncAt > options.since;
              version = event.version;
              if (missed) touch({ from: alignDown(range.from, stepMs), to: alignUp(range.to, stepMs) });
              return;
            }
            case 'freshness': {
              frames = frames.map((frame) => withFreshness(frame, event.freshness, now() + skew));
              const next = shownOf(event.freshness);
              if (next === shown) return;
              shown = next;
              emit(LoadingState.Streaming);
              return;
            }
            case 'trouble':
              if (streamProblem === event.message) return;
              streamProblem = event.message;
              emit(LoadingState.Streaming);
              return;
            case 'recovered':
              if (streamProblem === undefined) return;
              streamProblem = undefined;
              emit(LoadingState.Streaming);
              return;
          }
        },
        error: (err: unknown) => {
          streamProblem = `Live updates stopped: ${err instanceof Error ? err.message : String(err)}`;
          ended = true;
          settle();
        },
        complete: () => {
          ended = true;
          settle();
        },
      }),
    );
    return subscriptions;
  });
}

/** The step the service used: a different one would misalign the merge. */
export function stepOf(frames: DataFrame[]): number | undefined {
  for (const frame of frames) {
    const step = (frame.meta?.custom as { stepMs?: unknown } | undefined)?.stepMs;
    if (typeof step === 'number' && step > 0) return step;
  }
  return undefined;
}

function stepProblem(frames: DataFrame[], stepMs: number): string | undefined {
  const step = stepOf(frames);
  return step === undefined || step === stepMs
    ? undefined
    : `the service answered in steps of ${step} ms instead of ${stepMs} ms; refresh the panel`;
}

function withWarnings(frames: DataFrame[], problems: string[]): DataFrame[] {
  if (problems.length === 0) return frames;
  const notices: QueryResultMetaNotice[] = problems.map((text) => ({ severity: 'warning', text }));
  return frames.map((frame) => ({
    ...frame,
    meta: { ...frame.meta, notices: [...(frame.meta?.notices ?? []), ...notices] },
  }));
}
