/**
 * The adaptive safety margin.
 *
 * The gate assumes a request reaches the PG within `margin` of its slot. That delay has two
 * parts: our own lateness (slot → socket write: timers, event-loop lag, the phase guard's Redis
 * round trip), which each process measures, and the transit plus the PG's own reading delay,
 * which nobody on our side can see and which the configured minimum margin covers.
 *
 * Each process allows itself a send lateness A: sends later than A are not made (the caller takes
 * a new slot, wasting the old one), and the gate keeps a margin of A + minimum. Both cost budget:
 * a margin of M ms costs M/1000 of the rate, and a share p of sends refused as late costs p. So A
 * is the lateness that minimises A/window + P(lateness > A) over recent sends — a small A when
 * lateness has a thin tail, a larger one when refusing would waste more. Refused sends are
 * recorded too (at the lateness they were refused with), or the estimate would only ever see the
 * sends it allowed and shrink. The gate uses the largest need of any live process. A 429, which
 * should never come, doubles the need for a while.
 */
export interface MarginOptions {
  /** Covers transit and the PG's reading delay (what we cannot measure). */
  minMs: number;
  maxMs: number;
  /** The PG's window: a margin of M ms costs M / windowMs of the budget. */
  windowMs?: number;
  /** How many recent sends the estimate is taken over. */
  sampleSize?: number;
}

/** Until there are samples to go by: a cold process (JIT, first connections) is slower than it will be. */
const INITIAL_ALLOWANCE_MS = 5;
const MIN_SAMPLES = 50;
/** A floor: timers fire on whole milliseconds. */
const FLOOR_MS = 1;

/** This process's need for margin, from the lateness of its recent sends. */
export class MarginEstimator {
  private readonly samples: Float64Array;
  private next = 0;
  private count = 0;
  private penaltyMs = 0;
  private penaltyAt = 0;
  private cachedAt = -Infinity;
  private cachedAllowance = 0;

  constructor(private readonly o: MarginOptions) {
    this.samples = new Float64Array(o.sampleSize ?? 2_000);
  }

  /** Records one send's lateness (ms after its slot), or the lateness a late send was refused at. */
  record(latenessMs: number): void {
    this.samples[this.next] = Math.max(0, latenessMs);
    this.next = (this.next + 1) % this.samples.length;
    if (this.count < this.samples.length) this.count++;
  }

  /** A 429 slipped through: the margin was too small. Double the need; it halves every 30 s. */
  widen(nowMs: number): void {
    this.penaltyMs = Math.min(this.o.maxMs, this.needMs(nowMs) * 2);
    this.penaltyAt = nowMs;
    this.cachedAt = -Infinity;
  }

  /** The send lateness this process allows itself (ms); recomputed at most every 100 ms. */
  allowedLatenessMs(nowMs: number): number {
    if (nowMs - this.cachedAt < 100) return this.cachedAllowance;
    let allowance = INITIAL_ALLOWANCE_MS;
    if (this.count >= MIN_SAMPLES) allowance = bestAllowance(this.samples.slice(0, this.count).sort(), this.o.windowMs ?? 1_000);
    this.cachedAllowance = Math.min(Math.max(FLOOR_MS, allowance), this.o.maxMs - this.o.minMs);
    this.cachedAt = nowMs;
    return this.cachedAllowance;
  }

  /** The margin this process needs the gate to keep (ms), within [min, max]. */
  needMs(nowMs: number): number {
    const penalty = this.penaltyMs * 0.5 ** ((nowMs - this.penaltyAt) / 30_000);
    const need = Math.max(this.o.minMs + this.allowedLatenessMs(nowMs), penalty);
    return Math.min(this.o.maxMs, need);
  }
}

/**
 * The allowance A minimising A / window + share of samples above A, over sorted samples.
 * Candidates are the samples themselves (allowing exactly a sample's lateness keeps it).
 */
export function bestAllowance(sorted: ArrayLike<number>, windowMs: number): number {
  const n = sorted.length;
  let best = sorted[n - 1]!;
  let bestCost = best / windowMs;
  for (let i = 0; i < n; i++) {
    const a = sorted[i]!;
    const cost = a / windowMs + (n - 1 - i) / n;
    if (cost < bestCost) {
      bestCost = cost;
      best = a;
    }
  }
  return best;
}
