/**
 * Measures how long Redis takes to answer a PING, from a process of its own (so that the
 * process applying a batch, busy planning it, does not delay the measurement): PINGs
 * LIVESYNC_REDIS_URL about every millisecond until its parent says 'stop', then sends back
 * how many it sent and the slowest answer.
 *
 *   node -r @swc-node/register test/integration/pinger.ts   (started with fork())
 */
import { setPriority } from 'node:os';
import { Redis } from 'ioredis';

export type PingerMessage =
  { kind: 'ready' } | { kind: 'result'; pings: number; maxMs: number; p99Ms: number };

async function main(): Promise<void> {
  try {
    // As the throwaway server does: a busy machine's other work delays the probe less.
    setPriority(-10);
  } catch {
    // not allowed here: measure at the normal priority
  }
  const redis = new Redis(process.env.LIVESYNC_REDIS_URL!);
  await redis.ping();
  let running = true;
  process.on('message', (message) => {
    if (message === 'stop') running = false;
  });
  const samples: number[] = [];
  process.send?.({ kind: 'ready' } satisfies PingerMessage);
  while (running) {
    const started = performance.now();
    await redis.ping();
    samples.push(performance.now() - started);
    // A probe, not a load: a pause between PINGs leaves the machine's two cores to the work.
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  samples.sort((a, b) => a - b);
  process.send?.({
    kind: 'result',
    pings: samples.length,
    maxMs: samples.at(-1) ?? 0,
    p99Ms: samples[Math.floor(samples.length * 0.99)] ?? 0,
  } satisfies PingerMessage);
  redis.disconnect();
  process.disconnect?.();
}

void main();
