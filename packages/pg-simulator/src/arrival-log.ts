/**
 * The arrival log: one entry per PG request (never `/__sim/*`), stamped when its request line and
 * headers were read. It is both the evidence benches check (`/__sim/arrivals`) and the sliding
 * deque the rate limit counts over, so the limit and the evidence can never disagree.
 *
 * Benches push ~100k requests, so entries live in typed arrays that grow by doubling rather than
 * in one object per request.
 */

/** One-letter endpoint codes as reported by `/__sim/arrivals`; `?` is an unknown route. */
export const ENDPOINT_CODES = ['c', 'i', 'o', 'x', 't', '?'] as const;
/** One of {@link ENDPOINT_CODES}. */
export type EndpointCode = (typeof ENDPOINT_CODES)[number];

/** Index into {@link ENDPOINT_CODES}: confirm, inquire, inquireByOrder, cancel, transactions, other. */
export type EndpointIndex = 0 | 1 | 2 | 3 | 4 | 5;

const INITIAL_CAPACITY = 4096;

/** Append-only log of arrivals with a rolling-window counter over it. */
export class ArrivalLog {
  private times = new Float64Array(INITIAL_CAPACITY);
  private endpoints = new Uint8Array(INITIAL_CAPACITY);
  private statuses = new Int16Array(INITIAL_CAPACITY).fill(-1);
  /** Number of arrivals recorded. */
  length = 0;
  /** Index of the oldest arrival still inside the window ending at the latest arrival. */
  private windowStart = 0;
  /** Largest count seen in any window (t − windowMs, t]; a window's maximum always ends at an arrival. */
  maxInWindow = 0;

  /**
   * Records an arrival at `t` and returns how many arrivals, this one included, fall in
   * (t − windowMs, t]. `t` must not go backwards (callers use a monotonic clock).
   */
  record(t: number, endpoint: EndpointIndex, windowMs: number): number {
    if (this.length === this.times.length) this.grow();
    const index = this.length++;
    this.times[index] = t;
    this.endpoints[index] = endpoint;
    const floor = t - windowMs;
    while (this.windowStart < index && (this.times[this.windowStart] ?? 0) <= floor) this.windowStart++;
    const count = this.length - this.windowStart;
    if (count > this.maxInWindow) this.maxInWindow = count;
    return count;
  }

  /** Sets the HTTP status an arrival was answered with (left -1 when never answered). */
  setStatus(index: number, status: number): void {
    if (index >= 0 && index < this.length) this.statuses[index] = status;
  }

  /** Re-seats the window start after `windowMs` changed at runtime (it may have to move back). */
  rewindow(windowMs: number): void {
    if (this.length === 0) return;
    const last = this.times[this.length - 1] ?? 0;
    this.windowStart = this.firstIndexAfter(last - windowMs);
  }

  /** Arrivals with from <= t < to. */
  countBetween(from: number, to: number): number {
    return this.firstIndexAtOrAfter(to) - this.firstIndexAtOrAfter(from);
  }

  /** `{"arrivals":[[t,"c",200],...]}` for arrivals with t >= since, built as one string. */
  toJson(since: number): string {
    const parts: string[] = [];
    for (let i = this.firstIndexAtOrAfter(since); i < this.length; i++) {
      const code = ENDPOINT_CODES[this.endpoints[i] ?? 5] ?? '?';
      parts.push(`[${this.times[i]},"${code}",${this.statuses[i]}]`);
    }
    return `{"arrivals":[${parts.join(',')}]}`;
  }

  /** Forgets every arrival and the window maximum. */
  clear(): void {
    this.times = new Float64Array(INITIAL_CAPACITY);
    this.endpoints = new Uint8Array(INITIAL_CAPACITY);
    this.statuses = new Int16Array(INITIAL_CAPACITY).fill(-1);
    this.length = 0;
    this.windowStart = 0;
    this.maxInWindow = 0;
  }

  private grow(): void {
    const capacity = this.times.length * 2;
    const times = new Float64Array(capacity);
    times.set(this.times);
    const endpoints = new Uint8Array(capacity);
    endpoints.set(this.endpoints);
    const statuses = new Int16Array(capacity).fill(-1);
    statuses.set(this.statuses);
    this.times = times;
    this.endpoints = endpoints;
    this.statuses = statuses;
  }

  private firstIndexAtOrAfter(t: number): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.times[mid] ?? 0) < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private firstIndexAfter(t: number): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.times[mid] ?? 0) <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * The largest number of instants in any rolling window (t − windowMs, t], as the contract counts
 * it. Pure, for tests that check an arrival log (e.g. `/__sim/arrivals`) against the limit.
 */
export function maxInRollingWindow(timesMs: readonly number[], windowMs: number): number {
  let sorted = true;
  for (let i = 1; i < timesMs.length; i++) {
    if ((timesMs[i] ?? 0) < (timesMs[i - 1] ?? 0)) {
      sorted = false;
      break;
    }
  }
  const times = sorted ? timesMs : [...timesMs].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    const floor = (times[end] ?? 0) - windowMs;
    while ((times[start] ?? 0) <= floor) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}
