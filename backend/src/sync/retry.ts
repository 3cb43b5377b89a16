import type { ErrorClass } from '../sources/types';

export interface RetryOptions {
  /** Exponential backoff with full jitter for transient failures, capped at `maxMs`. */
  backoff: { initialMs: number; maxMs: number };
  /**
   * The circuit opens after `threshold` consecutive transient failures that span at least
   * `openAfterMs`; while it is open one probe runs every `halfOpenAfterMs`, jittered.
   */
  breaker: { threshold: number; openAfterMs: number; halfOpenAfterMs: number };
}

export const RETRY_DEFAULTS: RetryOptions = {
  backoff: { initialMs: 500, maxMs: 60_000 },
  breaker: { threshold: 5, openAfterMs: 30_000, halfOpenAfterMs: 30_000 },
};

export interface RetryDecision {
  delayMs: number;
  /** `failing` once the circuit is open or the error is permanent; `backoff` before. */
  state: 'backoff' | 'failing';
  circuitOpen: boolean;
}

/**
 * When to try again after a failed run. Backoff grows exponentially with full jitter, but its
 * cap never exceeds the time the dataset has been failing: the retry after a blip of a few
 * seconds comes a few seconds after it ends, not tens. A count of failures alone would open
 * the circuit within seconds of a restart of Redis or the upstream, so it also takes
 * `openAfterMs` of failing; probes while it is open are jittered so that replicas and
 * datasets do not probe in step. A permanent error waits `permanentRetryMs`, the dataset's
 * `sync.permanentRetry`; "sync now" does not wait for any of this (the engine runs at once).
 */
export class RetryPolicy {
  private failures = 0;
  private since: number | null = null;

  constructor(
    private readonly options: RetryOptions,
    private readonly permanentRetryMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  succeeded(): void {
    this.failures = 0;
    this.since = null;
  }

  failed(errorClass: ErrorClass, now: number): RetryDecision {
    this.failures++;
    this.since ??= now;
    if (errorClass === 'permanent')
      return { delayMs: this.permanentRetryMs, state: 'failing', circuitOpen: false };
    const { backoff, breaker } = this.options;
    const failingFor = now - this.since;
    if (this.failures >= breaker.threshold && failingFor >= breaker.openAfterMs) {
      const delayMs = Math.round(breaker.halfOpenAfterMs * (0.5 + 0.5 * this.random()));
      return { delayMs, state: 'failing', circuitOpen: true };
    }
    const exponential = backoff.initialMs * 2 ** Math.min(this.failures - 1, 30);
    const cap = Math.min(backoff.maxMs, exponential, Math.max(backoff.initialMs, failingFor));
    return { delayMs: Math.round(this.random() * cap), state: 'backoff', circuitOpen: false };
  }
}
