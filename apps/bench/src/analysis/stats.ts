/**
 * Small numeric helpers for the report: percentiles over sorted copies, and number formatting
 * that keeps the tables readable (ratios with 3 decimals, counts with thousands separators).
 */

/** The p-th percentile (0..100) by nearest rank; NaN for an empty list. */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
}

/** Median of a list (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The mean (NaN when empty). */
export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum / values.length;
}

/** The largest value (NaN when empty). */
export function max(values: ArrayLike<number>): number {
  let m = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) if (values[i]! > m) m = values[i]!;
  return values.length === 0 ? Number.NaN : m;
}

/** `12,345` */
export function count(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}

/** Milliseconds, with one decimal below 10 ms (intake latencies live there). */
export function ms(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  return n < 10 ? `${n.toFixed(1)} ms` : `${Math.round(n).toLocaleString('en-US')} ms`;
}

/** Seconds with one decimal. */
export function secs(n: number): string {
  return Number.isFinite(n) ? `${n.toFixed(1)} s` : 'n/a';
}

/** A ratio with 3 decimals. */
export function ratio(n: number): string {
  return Number.isFinite(n) ? n.toFixed(3) : 'n/a';
}

/** Bytes as a whole number with separators. */
export function bytes(n: number): string {
  return Number.isFinite(n) ? `${Math.round(n).toLocaleString('en-US')} B` : 'n/a';
}
