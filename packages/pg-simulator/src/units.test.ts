import { describe, expect, it } from 'vitest';
import { ArrivalLog, maxInRollingWindow } from './arrival-log.ts';
import { formatKst, parseIsoWithOffset } from './clock.ts';
import { DEFAULT_KNOBS, envNameFor, knobsFromEnv, mergeKnobs, parseKnobPatch } from './knobs.ts';
import { Rng } from './rng.ts';
import { forcedScenario } from './scenario.ts';

describe('maxInRollingWindow', () => {
  it('counts a window as (t − w, t]: an instant exactly w earlier is outside', () => {
    expect(maxInRollingWindow([0, 1_000], 1_000)).toBe(1);
    expect(maxInRollingWindow([0, 999.999], 1_000)).toBe(2);
    expect(maxInRollingWindow([0, 10, 20, 1_005, 1_010, 1_015, 1_020], 1_000)).toBe(4);
  });

  it('sorts unsorted input and handles empty input', () => {
    expect(maxInRollingWindow([1_500, 100, 600, 1_200], 1_000)).toBe(3);
    expect(maxInRollingWindow([], 1_000)).toBe(0);
  });
});

describe('ArrivalLog', () => {
  it('returns the count in the window at each arrival and keeps the maximum, across growth', () => {
    const log = new ArrivalLog();
    const times: number[] = [];
    let t = 0;
    for (let i = 0; i < 10_000; i++) {
      t += i % 1_000 < 600 ? 0.5 : 5; // bursts then gaps
      times.push(t);
      log.record(t, 0, 1_000);
    }
    expect(log.length).toBe(10_000);
    expect(log.maxInWindow).toBe(maxInRollingWindow(times, 1_000));
    expect(log.record(t + 2_000, 1, 1_000)).toBe(1);
  });

  it('reports statuses, -1 when never answered, and counts by range', () => {
    const log = new ArrivalLog();
    log.record(10, 0, 1_000);
    log.record(20, 3, 1_000);
    log.setStatus(0, 200);
    expect(JSON.parse(log.toJson(0))).toEqual({ arrivals: [[10, 'c', 200], [20, 'x', -1]] });
    expect(JSON.parse(log.toJson(15))).toEqual({ arrivals: [[20, 'x', -1]] });
    expect(log.countBetween(0, 20)).toBe(1);
  });
});

describe('Rng', () => {
  it('is deterministic per seed', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const seqA = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(seqA);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(seqA);
  });

  it('draws approval latencies with a ~150 ms median and a ~1.5 s p99', () => {
    const rng = new Rng(1);
    const samples = Array.from({ length: 20_000 }, () => rng.lognormalMs(150, 1_500)).sort((x, y) => x - y);
    const median = samples[10_000] ?? 0;
    const p99 = samples[19_800] ?? 0;
    expect(median).toBeGreaterThan(140);
    expect(median).toBeLessThan(160);
    expect(p99).toBeGreaterThan(1_250);
    expect(p99).toBeLessThan(1_800);
    expect(rng.lognormalMs(0, 1_500)).toBe(0);
  });
});

describe('knobs', () => {
  it('names env variables in SCREAMING_SNAKE and reads them', () => {
    expect(envNameFor('latencyP99Ms')).toBe('SIM_LATENCY_P99_MS');
    expect(envNameFor('ambiguousNoCommitRate')).toBe('SIM_AMBIGUOUS_NO_COMMIT_RATE');
    expect(knobsFromEnv({ SIM_DECLINE_RATE: '0.25', SIM_OUTAGE: 'hang', SIM_RATE_LIMIT: '300' })).toEqual({ declineRate: 0.25, outage: 'hang', rateLimit: 300 });
    expect(() => knobsFromEnv({ SIM_DROP_RATE: '1.5' })).toThrow(/SIM_DROP_RATE/);
  });

  it('rejects unknown knobs, bad values and inconsistent ranges', () => {
    expect(parseKnobPatch({ nope: 1 }).ok).toBe(false);
    expect(parseKnobPatch({ outage: 'down' }).ok).toBe(false);
    expect(parseKnobPatch({ maxConnections: 0 }).ok).toBe(false);
    expect(mergeKnobs({ ...DEFAULT_KNOBS }, { latencyMedianMs: 500, latencyP99Ms: 100 })).toBeTypeOf('string');
  });
});

describe('time and scenarios', () => {
  it('formats in +09:00 with ms and parses only timestamps with an offset', () => {
    const ms = Date.UTC(2024, 0, 1, 15, 30, 0, 123);
    expect(formatKst(ms)).toBe('2024-01-02T00:30:00.123+09:00');
    expect(parseIsoWithOffset(formatKst(ms))).toBe(ms);
    expect(parseIsoWithOffset('2024-01-01T00:00:00')).toBeNull();
  });

  it('reads the forced scenario from the header first, then the paymentKey marker', () => {
    expect(forcedScenario(undefined, 'sim_ambiguous_nocommit_abc')).toBe('ambiguous_nocommit');
    expect(forcedScenario(undefined, 'sim_late_1')).toBe('late');
    expect(forcedScenario('decline', 'sim_late_1')).toBe('decline');
    expect(forcedScenario(undefined, 'sim_unknown_x')).toBeNull();
    expect(forcedScenario(undefined, 'pk_late_1')).toBeNull();
  });
});
