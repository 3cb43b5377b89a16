import { RETRY_DEFAULTS, RetryPolicy, type RetryOptions } from '../../src/sync/retry';
import { prng } from '../helpers';

const PERMANENT_MS = 90_000;

/**
 * Plays an upstream that is down from 0 to `outageMs`: every run before then fails, the first
 * one after succeeds. Returns when that run happens and the states the failures reported.
 */
function playOutage(
  outageMs: number,
  random: () => number,
  options: RetryOptions = RETRY_DEFAULTS,
): { recoveredAt: number; runs: number; states: string[]; delays: number[] } {
  const policy = new RetryPolicy(options, PERMANENT_MS, random);
  let now = 0;
  const states: string[] = [];
  const delays: number[] = [];
  while (now < outageMs) {
    const decision = policy.failed('transient', now);
    states.push(decision.state);
    delays.push(decision.delayMs);
    now += decision.delayMs;
  }
  policy.succeeded();
  return { recoveredAt: now, runs: states.length + 1, states, delays };
}

describe('RetryPolicy', () => {
  it('costs a blip of a few seconds a few seconds, never the 30 s of an open circuit', () => {
    for (const outageMs of [1_000, 3_000, 4_000, 8_000]) {
      // The worst case of full jitter: every wait is as long as its cap.
      const worst = playOutage(outageMs, () => 1);
      expect(worst.states.every((s) => s === 'backoff')).toBe(true);
      // The retry after the blip comes within the blip's own length (and the first wait) of its end.
      expect(worst.recoveredAt - outageMs).toBeLessThanOrEqual(Math.max(outageMs, 500));
      const random = prng(outageMs);
      for (let i = 0; i < 50; i++) {
        const run = playOutage(outageMs, random);
        expect(run.states.every((s) => s === 'backoff')).toBe(true);
        expect(run.recoveredAt - outageMs).toBeLessThanOrEqual(Math.max(outageMs, 500));
      }
    }
  });

  it('caps each wait by the exponential step, by maxMs and by how long the dataset has failed', () => {
    const policy = new RetryPolicy(
      {
        backoff: { initialMs: 100, maxMs: 1_000 },
        breaker: { threshold: 1000, openAfterMs: 1e9, halfOpenAfterMs: 1 },
      },
      PERMANENT_MS,
      () => 1,
    );
    let now = 0;
    const delays: number[] = [];
    for (let n = 0; n < 8; n++) {
      const { delayMs } = policy.failed('transient', now);
      delays.push(delayMs);
      now += delayMs;
    }
    // 100, then min(200, failing 100) = 100, min(400, 200), min(800, 400), 800, then maxMs.
    expect(delays).toEqual([100, 100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it('opens the circuit only after enough failures over openAfterMs, then probes with jitter', () => {
    const options: RetryOptions = {
      backoff: { initialMs: 500, maxMs: 60_000 },
      breaker: { threshold: 5, openAfterMs: 30_000, halfOpenAfterMs: 30_000 },
    };
    const policy = new RetryPolicy(options, PERMANENT_MS, prng(7));
    let now = 0;
    // Five failures within a second do not open it.
    for (let i = 0; i < 5; i++) {
      expect(policy.failed('transient', now)).toMatchObject({ state: 'backoff', circuitOpen: false });
      now += 200;
    }
    now = 30_000;
    const probes: number[] = [];
    for (let i = 0; i < 20; i++) {
      const decision = policy.failed('transient', now);
      expect(decision).toMatchObject({ state: 'failing', circuitOpen: true });
      probes.push(decision.delayMs);
      now += decision.delayMs;
    }
    for (const delay of probes) {
      expect(delay).toBeGreaterThanOrEqual(15_000);
      expect(delay).toBeLessThanOrEqual(30_000);
    }
    expect(new Set(probes).size).toBeGreaterThan(10);
    policy.succeeded();
    expect(policy.failed('transient', now)).toMatchObject({ state: 'backoff', circuitOpen: false });
  });

  it('waits the configured time after a permanent error', () => {
    const policy = new RetryPolicy(RETRY_DEFAULTS, PERMANENT_MS, () => 0.5);
    expect(policy.failed('permanent', 0)).toEqual({
      delayMs: PERMANENT_MS,
      state: 'failing',
      circuitOpen: false,
    });
  });
});
