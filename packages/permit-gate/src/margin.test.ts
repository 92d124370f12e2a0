import { describe, expect, it } from 'vitest';
import { bestAllowance, MarginEstimator } from './margin.ts';

describe('the adaptive margin', () => {
  it('starts at the minimum plus 5 ms of allowed lateness, until it has samples', () => {
    const m = new MarginEstimator({ minMs: 5, maxMs: 60 });
    expect(m.needMs(0)).toBe(10);
  });

  it('allows the lateness that costs the least budget: margin ms against refused sends', () => {
    // 98% of sends within 0.5 ms, 2% at 10 ms: allowing 10 ms costs 1%, refusing them 2%.
    const mostlyFast = Array.from({ length: 1_000 }, (_, i) => (i < 980 ? 0.5 : 10)).sort((a, b) => a - b);
    expect(bestAllowance(mostlyFast, 1_000)).toBe(10);
    // 0.3% at 40 ms: allowing them would cost 4%, refusing them 0.3%.
    const rareSpikes = Array.from({ length: 1_000 }, (_, i) => (i < 997 ? 0.5 : 40)).sort((a, b) => a - b);
    expect(bestAllowance(rareSpikes, 1_000)).toBe(0.5);
  });

  it('follows the samples into the margin need, with a 1 ms floor', () => {
    const m = new MarginEstimator({ minMs: 5, maxMs: 60, sampleSize: 1_000 });
    for (let i = 0; i < 1_000; i++) m.record(i < 980 ? 0.5 : 10);
    expect(m.needMs(0)).toBe(15);
    const calm = new MarginEstimator({ minMs: 5, maxMs: 60, sampleSize: 1_000 });
    for (let i = 0; i < 1_000; i++) calm.record(i === 0 ? 40 : 0.4);
    expect(calm.allowedLatenessMs(0)).toBe(1);
  });

  it('forgets old lateness as new samples replace it', () => {
    const m = new MarginEstimator({ minMs: 2, maxMs: 60, sampleSize: 100 });
    for (let i = 0; i < 100; i++) m.record(20);
    expect(m.needMs(0)).toBe(22);
    for (let i = 0; i < 100; i++) m.record(0.2);
    expect(m.needMs(1_000)).toBe(3);
  });

  it('doubles after a 429 and decays back by half every 30 s', () => {
    const m = new MarginEstimator({ minMs: 5, maxMs: 100 });
    m.widen(0);
    expect(m.needMs(0)).toBe(20);
    expect(m.needMs(30_000)).toBe(10);
    expect(m.needMs(300_000)).toBe(10);
  });

  it('never exceeds the maximum', () => {
    const m = new MarginEstimator({ minMs: 5, maxMs: 30 });
    for (let i = 0; i < 100; i++) m.record(500);
    expect(m.needMs(0)).toBe(30);
    m.widen(0);
    expect(m.needMs(0)).toBe(30);
  });
});
