/**
 * Read timeouts that follow the PG: per call type, `factor × p75` of the latencies Sluice
 * observes (write → answer headers), clamped to `[minMs, maxMs]`.
 *
 * Two traps, and how this avoids them:
 * - In a PG with a hanging tail (the slow profile: 10 % of confirms take 15–30 s), a high
 *   percentile *is* the tail, and a timeout built on it pins to the upper bound. The p75 stays in
 *   the body of the distribution while less than a quarter of calls hang.
 * - A call that timed out was never observed, so an estimate from answered calls alone ratchets
 *   down (each shorter timeout hides more of the tail). A timed-out call counts as a sample as
 *   long as its timeout, so a PG that stops answering drives the timeout *up*, to its bound (by
 *   `factor` at each recomputation once more than a quarter of calls time out), where the
 *   breaker counts timeouts as failures.
 */
import type { PgCall } from '@sluice/domain';

/** The read timeout's bounds and its factor over the observed p75. */
export interface ReadTimeoutBounds {
  minMs: number;
  maxMs: number;
  /** The timeout is this many times the observed p75. */
  factor: number;
}

/** What one call type's estimate holds now. */
export interface ReadTimeoutView {
  /** The read timeout in force (ms). */
  timeoutMs: number;
  /** The observed median (ms), or null before enough samples. */
  typicalMs: number | null;
  /** The observed p75 (ms) the timeout is built on, or null before enough samples. */
  p75Ms: number | null;
}

/** The latest samples kept per call type: a few seconds of confirms at 500/s. */
const WINDOW = 512;
/** Samples between two recomputations (a sort of WINDOW numbers, ~20 µs). */
const RECOMPUTE_EVERY = 16;
/** Below this many samples the timeout stays at its upper bound. */
const MIN_SAMPLES = 32;

class Estimate {
  private readonly samples = new Float64Array(WINDOW);
  private count = 0;
  private next = 0;
  private pending = 0;
  view: ReadTimeoutView;

  constructor(private readonly bounds: ReadTimeoutBounds) {
    this.view = { timeoutMs: bounds.maxMs, typicalMs: null, p75Ms: null };
  }

  add(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % WINDOW;
    if (this.count < WINDOW) this.count++;
    if (++this.pending >= RECOMPUTE_EVERY || this.count === MIN_SAMPLES) this.recompute();
  }

  private recompute(): void {
    this.pending = 0;
    if (this.count < MIN_SAMPLES) return;
    const sorted = this.samples.slice(0, this.count).sort();
    const at = (q: number): number => sorted[Math.floor(q * (this.count - 1))]!;
    const { minMs, maxMs, factor } = this.bounds;
    const low = Math.min(minMs, maxMs);
    const p75 = at(0.75);
    this.view = { timeoutMs: Math.round(Math.min(maxMs, Math.max(low, factor * p75))), typicalMs: at(0.5), p75Ms: p75 };
  }
}

/** The read timeout per call type, following the latency observed. */
export class ReadTimeouts {
  private readonly estimates: Record<PgCall, Estimate>;

  constructor(readonly bounds: ReadTimeoutBounds) {
    this.estimates = {
      confirm: new Estimate(bounds),
      inquire: new Estimate(bounds),
      cancel: new Estimate(bounds),
      transactions: new Estimate(bounds),
    };
  }

  /** The read timeout to use for a call of this type now. */
  current(call: PgCall): number {
    return this.estimates[call].view.timeoutMs;
  }

  /** Whether a timeout of this value is at the upper bound (a PG failure for the breaker). */
  atMax(timeoutMs: number): boolean {
    return timeoutMs >= this.bounds.maxMs;
  }

  /** An answer's latency, from the write to its headers. */
  answered(call: PgCall, ms: number): void {
    this.estimates[call].add(ms);
  }

  /** A call that reached its read timeout: a sample at least as long as the timeout. */
  timedOut(call: PgCall, timeoutMs: number): void {
    this.estimates[call].add(timeoutMs);
  }

  /** Every call type's timeout and median now. */
  view(): Record<PgCall, ReadTimeoutView> {
    const estimates = this.estimates;
    return { confirm: estimates.confirm.view, inquire: estimates.inquire.view, cancel: estimates.cancel.view, transactions: estimates.transactions.view };
  }
}
