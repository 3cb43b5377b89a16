import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { LeaseGrant, Store } from '../store/types';

/** Runs `fn` after `ms`; the returned function cancels it. */
type SetTimer = (fn: () => void, ms: number) => () => void;

/** How long a lease lasts unless renewed, when the configuration does not say. */
export const LEASE_TTL_DEFAULT_MS = 15_000;
/** Renewals per TTL: a holder renews every third of it, so two renewals in a row may fail before it ends. */
const RENEWALS_PER_TTL = 3;
/** Margin after the holder's lease should have ended before a replica asks for it again. */
const TAKEOVER_MARGIN_MS = 20;

export interface LeaseOptions {
  /** Names this replica in the lease; unique to one process. */
  holder?: string;
  ttlMs?: number;
  /** The keeper's own clock and timers: real ones unless a test replaces them. */
  now?: () => number;
  setTimer?: SetTimer;
}

/** The lease as this replica sees it: in the status, /metrics and the sync events. */
export interface LeaseStatus {
  /** Whether this replica holds it now. */
  held: boolean;
  /** The replica that holds it (this one or another), as last seen; null when nobody did. */
  holder: string | null;
  /** The holder's fencing token, as last seen. */
  token: number | null;
  /** This replica's name in the lease. */
  self: string;
  ttlMs: number;
  /** When this replica last took the lease, and last renewed it; renewals since it took it. */
  acquiredAt: number | null;
  renewedAt: number | null;
  renewals: number;
  /** When this replica's lease ends unless renewed (null while it holds none). */
  expiresAt: number | null;
}

interface LeaseEvents {
  /** This replica was granted the lease; `previous` held it before (null: nobody, or unknown). */
  acquired: [LeaseGrant & { previous: string | null }];
  renewed: [];
  /** This replica no longer holds the lease (refused renewal, a refused write, or its time ran out unrenewed). */
  lost: [reason: string];
}

/** A name for this process in leases: host, pid and a random part, so a restarted process is a new holder. */
export function replicaName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/**
 * Keeps one dataset's sync lease for this replica: asks for it when the holder's lease ends
 * (the store says when), renews it every third of its TTL while held, and says when it is
 * gained or lost. The store fences every write of the sync path with the lease's token, so a
 * replica that lost it cannot write whatever it still believes; `held` is this replica's own,
 * conservative belief: from the moment a renewal was sent, the lease lasts one TTL at least.
 */
export class LeaseKeeper extends EventEmitter<LeaseEvents> {
  private readonly now: () => number;
  private readonly setTimer: SetTimer;
  private readonly ttlMs: number;
  private current: LeaseStatus;
  private cancel: (() => void) | null = null;
  private stopped = true;
  private ticking: Promise<void> = Promise.resolve();
  /** How long a grant or renewal lasts: the TTL, or for ever where the store has no other process to hand it to. */
  private grantedTtlMs = 0;

  constructor(
    private readonly store: Store,
    private readonly dataset: string,
    private readonly log: Logger,
    options: LeaseOptions = {},
  ) {
    super();
    this.now = options.now ?? Date.now;
    this.setTimer =
      options.setTimer ??
      ((fn, ms) => {
        const timer = setTimeout(fn, ms);
        return () => clearTimeout(timer);
      });
    this.ttlMs = options.ttlMs ?? LEASE_TTL_DEFAULT_MS;
    this.current = {
      held: false,
      holder: null,
      token: null,
      self: options.holder ?? replicaName(),
      ttlMs: this.ttlMs,
      acquiredAt: null,
      renewedAt: null,
      renewals: 0,
      expiresAt: null,
    };
  }

  /** Whether this replica may write now: granted, and not past the time its last renewal guarantees. */
  get held(): boolean {
    return this.current.held && this.current.expiresAt !== null && this.now() < this.current.expiresAt;
  }

  status(): LeaseStatus {
    return { ...this.current, held: this.held };
  }

  /** Asks for the lease now, then keeps at it; resolves once the first answer is in. */
  start(): Promise<void> {
    if (this.stopped) {
      this.stopped = false;
      this.ticking = this.tick();
    }
    return this.ticking;
  }

  /** Stops renewing and gives the lease up, so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancel?.();
    await this.ticking;
    if (!this.current.held) return;
    this.current = { ...this.current, held: false, expiresAt: null };
    await this.store.releaseLease(this.dataset).catch((err: unknown) => {
      this.log.warn({ err }, 'could not give the sync lease up; it ends on its own');
    });
  }

  /**
   * A write was refused for the token: the store knows better than this replica's clock. Asks
   * again at once, and resolves with whether this replica holds the lease again: it may, when
   * the lease merely ran out or the store lost it (a flush, a restart) and nobody else took it.
   */
  async refused(): Promise<boolean> {
    this.lose('a write was refused for its fencing token');
    if (this.stopped) return false;
    this.cancel?.();
    await this.ticking;
    this.ticking = this.tick();
    await this.ticking;
    return this.held;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.cancel = this.setTimer(() => {
      this.ticking = this.tick();
    }, ms);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const renewEvery = Math.floor(this.ttlMs / RENEWALS_PER_TTL);
    let next = renewEvery;
    const sentAt = this.now();
    try {
      if (this.current.held) {
        if (await this.store.renewLease(this.dataset, this.ttlMs)) {
          this.current = {
            ...this.current,
            renewedAt: sentAt,
            renewals: this.current.renewals + 1,
            expiresAt: sentAt + this.grantedTtlMs,
          };
          this.emit('renewed');
        } else {
          this.lose('the store no longer has it under this replica’s token');
          next = 0;
        }
      } else {
        next = await this.acquire(sentAt);
      }
    } catch (err) {
      // The store cannot answer: keep the lease while its time lasts, ask again soon.
      this.log.warn({ err }, 'could not reach the store to keep the sync lease');
      if (this.current.held && !this.held) this.lose('it ran out while the store could not be reached');
      next = Math.min(renewEvery, 1_000);
    }
    this.schedule(next);
  }

  /** Asks for the lease; returns when to ask again (when the holder's lease would end). */
  private async acquire(sentAt: number): Promise<number> {
    const previous = this.current.holder;
    const reply = await this.store.acquireLease(this.dataset, this.current.self, this.ttlMs);
    if (reply.granted) {
      this.grantedTtlMs = reply.ttlMs;
      this.current = {
        ...this.current,
        held: true,
        holder: reply.holder,
        token: reply.token,
        acquiredAt: sentAt,
        renewedAt: sentAt,
        renewals: 0,
        expiresAt: sentAt + reply.ttlMs,
      };
      this.log.info({ token: reply.token, previous }, 'took the sync lease: this replica syncs the dataset');
      this.emit('acquired', { holder: reply.holder, token: reply.token, previous });
      return Math.floor(this.ttlMs / RENEWALS_PER_TTL);
    }
    this.current = { ...this.current, holder: reply.holder, token: reply.token };
    return Math.min(this.ttlMs, reply.ttlMs + TAKEOVER_MARGIN_MS);
  }

  private lose(reason: string): void {
    if (!this.current.held) return;
    this.current = { ...this.current, held: false, expiresAt: null };
    this.log.warn({ reason }, 'lost the sync lease: this replica stops writing and serves queries only');
    this.emit('lost', reason);
  }
}
