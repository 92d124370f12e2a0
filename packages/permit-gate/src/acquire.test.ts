/**
 * The slot arithmetic of acquire.lua, run in real Redis with a fake clock (ARGV[10]).
 */
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const SCRIPT = readFileSync(new URL('./acquire.lua', import.meta.url), 'utf8');
let prefix = '';
/** This file's own prefixes: other test files run gates under `test-<uuid>` prefixes at the same time. */
const prefixes: string[] = [];
beforeEach(() => {
  prefix = `test-${randomUUID()}`;
  prefixes.push(prefix);
});
afterAll(async () => {
  const keys = prefixes.flatMap((p) => ['slots', 'last', 'margins', 'replid'].map((k) => `${p}:gate:${k}`));
  await redis.unlink(...keys);
  redis.disconnect();
});

interface Call {
  n: number;
  nowUs: number;
  limit?: number;
  windowUs?: number;
  minMarginUs?: number;
  maxMarginUs?: number;
  horizonUs?: number;
  client?: string;
  needUs?: number;
  /** The replication id the client is connected to ('' skips the check). */
  replid?: string;
}
async function acquire(c: Call): Promise<{ now: number; margin: number; retryAt: number; slots: number[] }> {
  const res = (await redis.eval(
    SCRIPT, 4, `${prefix}:gate:slots`, `${prefix}:gate:last`, `${prefix}:gate:margins`, `${prefix}:gate:replid`,
    c.n, c.limit ?? 10, c.windowUs ?? 1_000_000, c.minMarginUs ?? 0, c.maxMarginUs ?? 100_000,
    c.horizonUs ?? 10_000_000, c.client ?? 'a', c.needUs ?? 0, 10_000_000, c.nowUs, c.replid ?? '',
  )) as number[];
  return { now: res[0]!, margin: res[1]!, retryAt: res[2]!, slots: res.slice(3) };
}

/** The most slots in any window (t − w, t]. */
function maxInWindow(slots: number[], w: number): number {
  const s = [...slots].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < s.length; hi++) {
    while (s[hi]! - s[lo]! >= w) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

describe('acquire.lua slot arithmetic', () => {
  it('grants nothing for a window plus the largest margin when the state was written under another replication id', async () => {
    const T = 1_700_000_000_000_000;
    const W = 1_000_000;
    const MAX = 100_000;
    // A cold start under a replication id waits the largest margin too (nothing was recorded).
    const first = await acquire({ n: 3, nowUs: T, replid: 'aaaa', horizonUs: 2 * W });
    expect(first.slots[0]).toBe(T + W + MAX);
    const steady = await acquire({ n: 1, nowUs: T + 2 * W, replid: 'aaaa' });
    expect(steady.slots[0]).toBe(T + 2 * W);
    // The same server again (a reconnect): its state is whole, nothing waits.
    const again = await acquire({ n: 1, nowUs: T + 3 * W, replid: 'aaaa' });
    expect(again.slots[0]).toBe(T + 3 * W);
    // A promoted replica: the state is there but may lack the last slots; wait past them.
    const now = T + 3 * W + 500;
    const promoted = await acquire({ n: 1, nowUs: now, replid: 'bbbb', horizonUs: 2 * W });
    expect(promoted.slots[0]).toBeGreaterThanOrEqual(now + W + MAX);
    expect(await redis.get(`${prefix}:gate:replid`)).toBe('bbbb');
    // From then on, under the new id, pacing as usual.
    const next = await acquire({ n: 1, nowUs: now + 2 * W, replid: 'bbbb' });
    expect(next.slots[0]).toBe(now + 2 * W);
  });

  it('also waits when the state holds no replication id at all (written before it was recorded, or lost with the last slots)', async () => {
    const T = 1_700_000_000_000_000;
    const W = 1_000_000;
    await acquire({ n: 1, nowUs: T, horizonUs: 2 * W });
    const r = await acquire({ n: 1, nowUs: T + 2 * W, replid: 'cccc', horizonUs: 2 * W });
    expect(r.slots[0]).toBeGreaterThanOrEqual(T + 2 * W + W + 100_000);
  });

  it('waits one full window on a cold start, then paces at (window + margin) / limit', async () => {
    const T = 1_700_000_000_000_000;
    const r = await acquire({ n: 5, nowUs: T, minMarginUs: 10_000 });
    expect(r.margin).toBe(10_000);
    const spacing = Math.ceil(1_010_000 / 10);
    expect(r.slots[0]).toBe(T + 1_000_000);
    expect(r.slots.slice(1).map((s, i) => s - r.slots[i]!)).toEqual([spacing, spacing, spacing, spacing]);
  });

  it('never puts more than limit slots in any span of window + margin, across many callers', async () => {
    const T = 1_700_000_000_000_000;
    const all: number[] = [];
    for (let i = 0; i < 200; i++) {
      const r = await acquire({ n: 3, nowUs: T + i * 7_000, client: `c${i % 4}`, minMarginUs: 5_000 });
      all.push(...r.slots);
    }
    expect(all.length).toBeGreaterThan(40);
    expect(maxInWindow(all, 1_005_000)).toBeLessThanOrEqual(10);
    // ...and uses the budget: the busiest plain window is full.
    expect(maxInWindow(all, 1_000_000)).toBe(10);
  });

  it('grants nothing past the horizon and says when to come back', async () => {
    const T = 1_700_000_000_000_000;
    const first = await acquire({ n: 1, nowUs: T, horizonUs: 2_000_000 });
    expect(first.slots).toHaveLength(1);
    const r = await acquire({ n: 50, nowUs: T, horizonUs: 1_200_000 });
    // slots every 100 ms from T + 1.1 s up to T + 1.2 s: two of them.
    expect(r.slots).toEqual([T + 1_100_000, T + 1_200_000]);
    expect(r.retryAt).toBe(T + 1_300_000 - 1_200_000);
  });

  it('uses the largest live margin need of any client, and forgets expired ones', async () => {
    const T = 1_700_000_000_000_000;
    await acquire({ n: 0, nowUs: T, client: 'slow', needUs: 30_000 });
    const r = await acquire({ n: 1, nowUs: T + 1_000, client: 'fast', needUs: 2_000, minMarginUs: 1_000 });
    expect(r.margin).toBe(30_000);
    const later = await acquire({ n: 0, nowUs: T + 20_000_000, client: 'fast', needUs: 2_000, minMarginUs: 1_000 });
    expect(later.margin).toBe(2_000);
  });

  it('spaces new slots by a wider margin until the slots granted under it are out of reach', async () => {
    const T = 1_700_000_000_000_000;
    const W = 1_000_000;
    const spacing = (marginUs: number) => Math.ceil((W + marginUs) / 500);
    // Slots granted under a 60 ms margin: each may reach the PG up to 60 ms after its slot.
    const wide = await acquire({ n: 5, nowUs: T, client: 'x', needUs: 60_000, limit: 500, windowUs: W });
    expect(wide.margin).toBe(60_000);
    const lastWide = Math.max(...wide.slots);
    // The need drops at once: new slots may be only 5 ms late, but are still spaced for 60 ms.
    const soon = await acquire({ n: 3, nowUs: lastWide - 1_000, client: 'x', needUs: 5_000, limit: 500, windowUs: W });
    expect(soon.margin).toBe(5_000);
    expect(soon.slots[0]! - lastWide).toBe(spacing(60_000));
    expect(soon.slots[2]! - soon.slots[1]!).toBe(spacing(60_000));
    // Once those slots are further back than window + 60 ms, spacing follows the need again;
    // granting under 60 ms did not keep it there (no ratchet).
    const next = Math.max(...soon.slots) + W + 60_001;
    const later = await acquire({ n: 3, nowUs: next, client: 'x', needUs: 5_000, limit: 500, windowUs: W });
    expect(later.margin).toBe(5_000);
    expect(later.slots[2]! - later.slots[1]!).toBe(spacing(5_000));
  });

  it('caps the margin at the configured maximum', async () => {
    const r = await acquire({ n: 0, nowUs: 1_700_000_000_000_000, needUs: 500_000, maxMarginUs: 50_000 });
    expect(r.margin).toBe(50_000);
  });

  it('keeps the rolling check when the margin shrinks after slots were paced wider', async () => {
    const T = 1_700_000_000_000_000;
    const wide = await acquire({ n: 10, nowUs: T, minMarginUs: 0, needUs: 100_000, client: 'x' });
    expect(wide.slots).toHaveLength(10);
    // The wide need expires; the next slot still respects the span of the 10th newest slot.
    const narrow = await acquire({ n: 10, nowUs: T + 10_500_000, minMarginUs: 0, client: 'y' });
    const all = [...wide.slots, ...narrow.slots];
    expect(maxInWindow(all, 1_000_000)).toBeLessThanOrEqual(10);
  });
});
