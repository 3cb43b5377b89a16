/** No computation slot is free and the queue is full: the caller answers 503 with Retry-After. */
export class QueryBusyError extends Error {
  readonly statusCode = 503;
  constructor(
    readonly active: number,
    readonly queued: number,
  ) {
    super(
      `the service is busy: ${active} ${active === 1 ? 'request is' : 'requests are'} computing and ${queued} waiting (server.limits.maxConcurrentQueries, maxQueuedQueries); retry shortly`,
    );
    this.name = 'QueryBusyError';
  }
}

export interface GateStats {
  active: number;
  queued: number;
  /** The most slots ever held at once: never above the limit. */
  maxActive: number;
  maxQueued: number;
  /** Requests turned away because the queue was full. */
  rejected: number;
}

/**
 * A semaphore over metrics computations (rollup reads, folds, frames): at most
 * `maxActive` at once, the rest wait first come, first served in a queue of at most
 * `maxQueued`; beyond that {@link QueryBusyError}. Cache hits never take a slot.
 *
 * Node runs one computation at a time anyway; the slots bound how many are in progress,
 * each holding its rollups and frames in memory, and interleave on the event loop.
 * Defaults (`server.limits`): 2 slots, so one request's store reads overlap another's
 * folding while at most two answers (each within `maxPointsPerRequest`, plus a 2 MB piece
 * of rollups) are being built; 64 waiting, more than the concurrent connections of a busy
 * Grafana (the bench replays 50 without a 503), and a waiting request holds only its
 * group lists.
 */
export class QueryGate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly counters = { maxActive: 0, maxQueued: 0, rejected: 0 };

  constructor(
    readonly maxActive: number,
    readonly maxQueued: number,
  ) {}

  /** Waits for a slot; the returned function frees it (once). */
  async acquire(): Promise<() => void> {
    if (this.active >= this.maxActive) {
      if (this.waiting.length >= this.maxQueued) {
        this.counters.rejected++;
        throw new QueryBusyError(this.active, this.waiting.length);
      }
      // The slot is handed over by release(), so a newcomer can never overtake the queue.
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        this.counters.maxQueued = Math.max(this.counters.maxQueued, this.waiting.length);
      });
    } else {
      this.active++;
    }
    this.counters.maxActive = Math.max(this.counters.maxActive, this.active);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    };
  }

  /** Slots of one request: taken at its first computation, kept for the rest, freed by `release`. */
  lease(): Lease {
    return new Lease(this);
  }

  stats(): GateStats {
    return { active: this.active, queued: this.waiting.length, ...this.counters };
  }
}

/**
 * One request's share of the gate. Its computations run one after another under a single
 * slot, so a request with 32 queries waits in the queue once (not 32 times) and never holds
 * more than one slot, and the event loop serves others between its queries.
 */
export class Lease {
  private slot: Promise<() => void> | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly gate: QueryGate) {}

  run<T>(compute: () => Promise<T>): Promise<T> {
    const next = this.chain.then(async () => {
      this.slot ??= this.gate.acquire();
      await this.slot;
      return compute();
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Frees the slot; call once every computation of the request has settled. */
  async release(): Promise<void> {
    const slot = this.slot;
    if (!slot) return;
    const free = await slot.catch(() => null);
    free?.();
  }
}
