import { describe, expect, it } from 'vitest';
import { violationEpisodes } from './pg-analysis.ts';

/** Arrival times every `stepMs` over [0, untilMs), with those in [holdFrom, holdTo) read at holdTo. */
function arrivals(stepMs: number, untilMs: number, hold?: [number, number]): number[] {
  const t: number[] = [];
  for (let i = 0; i * stepMs < untilMs; i++) {
    const x = i * stepMs;
    t.push(hold && x >= hold[0] && x < hold[1] ? hold[1] : x);
  }
  return t.sort((a, b) => a - b);
}

describe('violationEpisodes', () => {
  it('finds none at the gate pace (2.1 ms apart)', () => {
    expect(violationEpisodes(arrivals(2.1, 3_000), 500, 1_000)).toEqual([]);
  });

  it('shows requests held and then read together: the hole before the window counts whole, and the burst', () => {
    const [e, ...rest] = violationEpisodes(arrivals(2.1, 3_000, [1_000, 1_080]), 500, 1_000);
    expect(rest).toEqual([]);
    expect(e!.count).toBeGreaterThan(500);
    // The hole (the last arrival before 1,000 ms, then 1,080 ms) ends inside the episode's first window.
    expect(e!.gapMs).toBeGreaterThan(79);
    expect(e!.gapMs).toBeLessThan(83);
    // The 39 held requests read at once, on top of the pace.
    expect(e!.densest50).toBeGreaterThanOrEqual(39 + 23);
  });

  it('shows requests sent too close: no hole, a dense but even stream', () => {
    const [e] = violationEpisodes(arrivals(1.9, 3_000), 500, 1_000);
    expect(e!.count).toBeGreaterThan(500);
    expect(e!.gapMs).toBeCloseTo(1.9, 5);
    expect(e!.densest50).toBeLessThanOrEqual(27);
  });
});
