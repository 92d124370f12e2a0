/**
 * Seeded randomness. Every random choice in the simulator goes through one `Rng`, so a run with
 * the same seed and the same arrival order draws the same outcomes and latencies.
 */

/** z-score of the 99th percentile of the standard normal distribution. */
const Z_P99 = 2.3263478740408408;

/** mulberry32: tiny, fast, and good enough for simulation (not for cryptography). */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal by Box–Muller; `1 - next()` keeps the log argument above 0. */
  normal(): number {
    const u1 = 1 - this.next();
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /**
   * A lognormal latency with the given median and 99th percentile: ln X ~ N(ln median, σ) with
   * σ = ln(p99 / median) / z99. Defaults (150 / 1500 ms) give "usually 100–300 ms, sometimes
   * seconds" as the contract describes. A median of 0 means no latency at all.
   */
  lognormalMs(medianMs: number, p99Ms: number): number {
    if (medianMs <= 0) return 0;
    const sigma = p99Ms > medianMs ? Math.log(p99Ms / medianMs) / Z_P99 : 0;
    return medianMs * Math.exp(sigma * this.normal());
  }

  /** Uniform in [min, max). */
  between(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly [T, ...T[]]): T {
    const index = Math.floor(this.next() * items.length);
    return items[index] ?? items[0];
  }
}
