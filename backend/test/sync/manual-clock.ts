import type { SetTimer } from '../../src/sync/engine';

/**
 * A clock that moves only when a test moves it: `now` for the engine's notion of time,
 * `setTimer` for its waits. `advance` fires due timers in order, each at its own time.
 */
export class ManualClock {
  private timers: { at: number; seq: number; fn: () => void }[] = [];
  private seq = 0;

  constructor(public time: number) {}

  readonly now = (): number => this.time;

  readonly setTimer: SetTimer = (fn, ms) => {
    const timer = { at: this.time + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  };

  /** Timers waiting, soonest first: when each fires, from now. */
  pending(): number[] {
    return this.timers.map((t) => t.at - this.time).sort((a, b) => a - b);
  }

  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = due.at;
      due.fn();
    }
    this.time = target;
  }
}
