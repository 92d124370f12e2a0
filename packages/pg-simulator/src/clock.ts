/**
 * Time. Arrival stamps must be monotonic and fractional (the rate limit is measured in ms over a
 * (t − 1000, t] window), so everything uses `performance.timeOrigin + performance.now()` rather
 * than `Date.now()`, which can step backwards when the wall clock is adjusted.
 */

const KST_OFFSET_MS = 9 * 60 * 60 * 1000;

/** Wall-clock ms since the epoch, fractional and monotonic within this process. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * ISO-8601 in Korea time with milliseconds, e.g. `2024-02-13T12:18:14.123+09:00`. Toss v1 writes
 * its times in +09:00; the milliseconds keep commit order visible in `transactionAt`.
 */
export function formatKst(ms: number): string {
  const shifted = new Date(Math.floor(ms) + KST_OFFSET_MS).toISOString();
  return shifted.slice(0, -1) + '+09:00';
}

const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/** Parses an ISO-8601 timestamp that carries an offset (the contract requires one); null otherwise. */
export function parseIsoWithOffset(text: string): number | null {
  if (!ISO_WITH_OFFSET.test(text)) return null;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : null;
}
