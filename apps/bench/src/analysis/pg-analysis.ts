/**
 * Reads a run's evidence the way the contract counts: the simulator's arrival log (stamped when
 * each request's head was read) for the rolling-window maximum and the 429/503 counts, and the
 * backlog samples for how long the PG could have been kept busy.
 */
import { maxInRollingWindow } from '@sluice/pg-simulator';
import type { Arrival } from '../harness/sim-client.ts';
import { median } from './stats.ts';

/** One reading of the backlog (`open` zset size) at wall-clock `t` (ms epoch). */
export interface BacklogSample {
  t: number;
  open: number;
}

/** A run's PG figures from the simulator's arrival log and the backlog samples. */
export interface PgAnalysis {
  requests: number;
  byEndpoint: Record<string, number>;
  status429: number;
  status503: number;
  /** Never answered (dropped connection, or still pending when read). */
  unanswered: number;
  maxInWindow: number;
  firstArrival: number;
  lastArrival: number;
  /** Answered requests other than 429/503 between the first arrival and `drainEnd`. */
  useful: number;
  /** Seconds with a non-empty backlog (100 ms samples), from the first arrival to `drainEnd`. */
  backlogSeconds: number;
  /** Seconds from the first arrival to `drainEnd`. */
  spanSeconds: number;
  /** useful ÷ (limit × backlogSeconds). */
  utilisation: number;
  /** useful ÷ (limit × spanSeconds), the coarser reading. */
  utilisationSpan: number;
  /** Ideal drain: every PG request at exactly the limit (s). */
  idealSeconds: number;
  /** The last confirm's arrival (ms epoch): from then on only answers were awaited. */
  lastConfirm: number;
  /** Last confirm arrival → `drainEnd` (s): the approval-latency tail no client can fill. */
  tailSeconds: number;
  /** useful ÷ (limit × (lastConfirm − firstArrival)): the rate while confirms were still going out. */
  sendPhaseUtilisation: number;
  /** Median arrivals per whole second between first arrival + 2 s and the last confirm − 1 s. */
  steadyRps: number;
  /**
   * Most arrivals in any 10 ms. Gate slots are at least (window + margin) ÷ limit ≈ 2 ms apart, so
   * much more than 5 here means requests were held up on the way and read in a burst.
   */
  maxIn10Ms: number;
  /** Longest time without any arrival between the first confirm and the last confirm (ms). */
  longestGapMs: number;
  /** Arrivals in each of the first three seconds from the first confirm: how fast a burst reaches the budget. */
  firstSeconds: number[];
  /** Over-limit windows, merged into episodes: first and last arrival that ended one, and the worst count. */
  violations: ViolationEpisode[];
}

const ENDPOINT_NAMES: Record<string, string> = { c: 'confirm', i: 'inquire', o: 'inquireByOrder', x: 'cancel', t: 'transactions', '?': 'other' };

/**
 * `drainEnd` is when the last payment became final (ms epoch). `limit`/`windowMs` are the
 * contract's 500 per 1,000 ms.
 */
export function analysePg(arrivals: readonly Arrival[], samples: readonly BacklogSample[], drainEnd: number, limit = 500, windowMs = 1_000): PgAnalysis {
  const times = arrivals.map((a) => a.t);
  const byEndpoint: Record<string, number> = {};
  let status429 = 0;
  let status503 = 0;
  let unanswered = 0;
  let useful = 0;
  // Spans start at the first confirm: a worker's start-up call (reconciliation's listing) may come
  // long before the load.
  const first = arrivals.find((a) => a.endpoint === 'c')?.t ?? times[0] ?? Number.NaN;
  for (const a of arrivals) {
    const name = ENDPOINT_NAMES[a.endpoint] ?? a.endpoint;
    byEndpoint[name] = (byEndpoint[name] ?? 0) + 1;
    if (a.status === 429) status429++;
    else if (a.status === 503) status503++;
    else if (a.status < 0) unanswered++;
    else if (a.t <= drainEnd && a.t >= first) useful++;
  }
  let backlogMs = 0;
  for (let i = 0; i + 1 < samples.length; i++) {
    const s = samples[i]!;
    if (s.open <= 0) continue;
    const from = Math.max(s.t, first);
    const to = Math.min(samples[i + 1]!.t, drainEnd);
    if (to > from) backlogMs += to - from;
  }
  let lastConfirm = Number.NaN;
  for (let i = arrivals.length - 1; i >= 0; i--) {
    if (arrivals[i]!.endpoint === 'c') {
      lastConfirm = arrivals[i]!.t;
      break;
    }
  }
  let sendUseful = 0;
  for (const a of arrivals) if (a.t <= lastConfirm && a.status >= 0 && a.status !== 429 && a.status !== 503) sendUseful++;
  const perSecondCounts: number[] = [];
  for (let from = first + 2_000; from + 1_000 <= lastConfirm - 1_000; from += 1_000) perSecondCounts.push(countIn(times, from, from + 1_000));
  let longestGapMs = 0;
  for (let i = 1; i < times.length && times[i]! <= lastConfirm; i++) if (times[i - 1]! >= first) longestGapMs = Math.max(longestGapMs, times[i]! - times[i - 1]!);
  const spanSeconds = (drainEnd - first) / 1_000;
  const backlogSeconds = backlogMs / 1_000;
  const perSecond = (limit * 1_000) / windowMs;
  return {
    requests: arrivals.length,
    byEndpoint,
    status429,
    status503,
    unanswered,
    maxInWindow: maxInRollingWindow(times, windowMs),
    firstArrival: first,
    lastArrival: times[times.length - 1] ?? Number.NaN,
    useful,
    backlogSeconds,
    spanSeconds,
    utilisation: useful / (perSecond * backlogSeconds),
    utilisationSpan: useful / (perSecond * spanSeconds),
    idealSeconds: arrivals.length / perSecond,
    lastConfirm,
    tailSeconds: (drainEnd - lastConfirm) / 1_000,
    sendPhaseUtilisation: sendUseful / ((perSecond * (lastConfirm - first)) / 1_000),
    steadyRps: median(perSecondCounts),
    maxIn10Ms: maxInRollingWindow(times, 10),
    longestGapMs,
    firstSeconds: [0, 1, 2].map((k) => countIn(times, first + k * 1_000, first + (k + 1) * 1_000)),
    violations: violationEpisodes(times, limit, windowMs),
  };
}

/**
 * An over-limit episode, and the shape of the arrivals over it ((from − window, to]): a long gap
 * followed by a dense 50 ms says requests were held somewhere and then read together; an even
 * stream with no gap says they were sent too close.
 */
export interface ViolationEpisode {
  from: number;
  to: number;
  count: number;
  /** The longest gap between two arrivals in the episode's windows, or ending in them (ms). */
  gapMs: number;
  /** The most arrivals in any 50 ms of them (at the gate's pace, about 24). */
  densest50: number;
}

/** Windows (t − windowMs, t] holding more than `limit` arrivals, merged when they overlap. */
export function violationEpisodes(times: readonly number[], limit: number, windowMs: number): ViolationEpisode[] {
  const out: ViolationEpisode[] = [];
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while (times[start]! <= times[end]! - windowMs) start++;
    const n = end - start + 1;
    if (n <= limit) continue;
    const last = out[out.length - 1];
    if (last && times[end]! - last.to <= windowMs) {
      last.to = times[end]!;
      last.count = Math.max(last.count, n);
    } else {
      out.push({ from: times[end]!, to: times[end]!, count: n, gapMs: 0, densest50: 0 });
    }
  }
  for (const e of out) {
    // From the arrival before the first window: a hole that ends inside it counts whole.
    const span = times.slice(Math.max(0, lowerBound(times, e.from - windowMs) - 1), lowerBound(times, e.to) + 1);
    for (let i = 1; i < span.length; i++) e.gapMs = Math.max(e.gapMs, span[i]! - span[i - 1]!);
    e.densest50 = maxInRollingWindow(span, 50);
  }
  return out;
}

/** Sorted times in [from, to). */
function countIn(sorted: readonly number[], from: number, to: number): number {
  return lowerBound(sorted, to) - lowerBound(sorted, from);
}

function lowerBound(sorted: readonly number[], t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Arrivals per second in [from, to) (ms epoch), leaving out 429s and 503s (refused at once, so
 * they never held a connection for an approval); arrivals still unanswered count, as they are
 * approvals in progress.
 */
export function rateBetween(arrivals: readonly Arrival[], from: number, to: number): number {
  let n = 0;
  for (const a of arrivals) if (a.t >= from && a.t < to && a.status !== 429 && a.status !== 503) n++;
  return n / ((to - from) / 1_000);
}
