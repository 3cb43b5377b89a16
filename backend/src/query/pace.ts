import { setImmediate } from 'node:timers/promises';

/**
 * Long synchronous work (folding rollups, shaping and serializing frames) calls `tick()`
 * between pieces; once a slice of about 10 ms has run it waits for the next turn of the
 * event loop, so liveness probes, metrics scrapes and other requests get answered in the
 * middle of a heavy query instead of after it.
 */
export class Pacer {
  private last = performance.now();

  constructor(private readonly sliceMs = 10) {}

  async tick(): Promise<void> {
    if (performance.now() - this.last < this.sliceMs) return;
    await setImmediate();
    this.last = performance.now();
  }
}
