/**
 * A responsiveness probe of the simulator: a tiny admin request every 20 ms, timed. The admin
 * port shares the simulator's event loop, so a long round trip means the simulator could not
 * read anything then, PG requests included. Arrivals held up that way are later read in a burst
 * and stamped closer together than they were sent, which no client-side gate can see; when a
 * rolling window goes over the limit, this tells whether the PG side stalled at that moment.
 * The bench's own timer lag is recorded alongside, to tell a stalled simulator from a stalled
 * bench, and a Redis PING, to tell a stalled machine from a Redis busy with a long script.
 */
import type { Redis } from 'ioredis';

/** One probe: when it was sent and how long the simulator and Redis took to answer. */
export interface StallSample {
  /** When the probe was sent (ms epoch). */
  t: number;
  /** Round trip (ms). */
  rttMs: number;
  /** Round trip of a Redis PING sent right after (ms): a Redis blocked by a long script shows here. */
  redisMs: number;
  /** How late the bench's own 20 ms timer fired before this probe (ms). */
  benchLagMs: number;
}

const PERIOD_MS = 20;

/** Probes the simulator and Redis every 20 ms, to show when a process was not scheduled. */
export class StallProbe {
  readonly samples: StallSample[] = [];
  private running = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly adminUrl: string,
    private readonly redis: Redis,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let due = performance.now();
    while (this.running) {
      const start = performance.now();
      const benchLagMs = Math.max(0, start - due);
      const t = Date.now();
      try {
        const res = await fetch(`${this.adminUrl}/__sim/config`);
        await res.arrayBuffer();
        const rttMs = performance.now() - start;
        const pingAt = performance.now();
        await this.redis.ping();
        this.samples.push({ t, rttMs, redisMs: performance.now() - pingAt, benchLagMs });
      } catch {
        // A failed probe says nothing about stalls; the next one comes shortly.
      }
      due = performance.now() + PERIOD_MS;
      await new Promise((r) => setTimeout(r, PERIOD_MS));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/** The probes summed up: how many were slow, and the slowest. */
export interface StallSummary {
  probes: number;
  /** Probes slower than `thresholdMs`. */
  slow: number;
  maxRttMs: number;
  thresholdMs: number;
  maxBenchLagMs: number;
  /** Redis PINGs slower than `thresholdMs`, and the slowest. */
  redisSlow: number;
  maxRedisMs: number;
}

/** Sums up the probes against a threshold (ms). */
export function summariseStalls(samples: readonly StallSample[], thresholdMs = 10): StallSummary {
  let slow = 0;
  let maxRttMs = 0;
  let maxBenchLagMs = 0;
  let redisSlow = 0;
  let maxRedisMs = 0;
  for (const s of samples) {
    if (s.rttMs > thresholdMs) slow++;
    if (s.redisMs > thresholdMs) redisSlow++;
    maxRedisMs = Math.max(maxRedisMs, s.redisMs);
    maxRttMs = Math.max(maxRttMs, s.rttMs);
    maxBenchLagMs = Math.max(maxBenchLagMs, s.benchLagMs);
  }
  return { probes: samples.length, slow, maxRttMs, thresholdMs, maxBenchLagMs, redisSlow, maxRedisMs };
}

/**
 * The slowest probe whose round trip overlapped [from − 1,000 ms, to] (ms epoch): a stall that
 * could have compressed the arrivals of the window ending at `to`.
 */
export function stallNear(samples: readonly StallSample[], from: number, to: number): StallSample | null {
  let worst: StallSample | null = null;
  for (const s of samples) {
    if (s.t + s.rttMs < from - 1_000 || s.t > to) continue;
    if (!worst || s.rttMs > worst.rttMs) worst = s;
  }
  return worst;
}

/**
 * What was around an over-limit window (from, to]: the slowest probe near it ({@link stallNear})
 * and the gate's margin in force as it filled (the last 1 s sample before `from`; null if none).
 */
export function episodeContext(
  samples: readonly StallSample[],
  margins: readonly { t: number; marginMs: number }[],
  from: number,
  to: number,
): { stall: StallSample | null; marginMs: number | null } {
  return { stall: stallNear(samples, from, to), marginMs: margins.filter((m) => m.t <= from).pop()?.marginMs ?? null };
}
