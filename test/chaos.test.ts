/**
 * The shortened fault suite in `npm test`: worker kills, a Redis kill -9 with AOF restart, and a
 * PG outage (refusing, then hanging), all under mixed PG faults; then worker kills and a kill -9
 * of the primary on a Sentinel group, and on a Redis Cluster. Every scenario must end with
 * 0 lost, 0 double charges, 0 mismatches, ≤ 500 per rolling second and 0 × 429; the breaker must
 * hold every confirm back while open and probe at about one call per second.
 */
import { describe, expect, it } from 'vitest';
import { runChaos, SHORT } from './chaos/scenarios.ts';

describe('chaos (short)', () => {
  it('keeps the money rules through worker kills, a Redis crash and a PG outage', async () => {
    const results = await runChaos({ ...SHORT, log: (l) => console.log(l) });
    expect(results).toHaveLength(3);
    for (const r of results) {
      expect({ name: r.name, lost: r.lost, notFinal: r.notFinal, doubleCharges: r.doubleCharges, mismatches: r.mismatches, status429: r.status429, repaired: r.repaired }).toEqual({
        name: r.name, lost: 0, notFinal: 0, doubleCharges: 0, mismatches: 0, status429: 0, repaired: 0,
      });
      expect(r.maxInWindow).toBeLessThanOrEqual(500);
      expect(r.acknowledged).toBeGreaterThan(100);
    }
    const outage = results.find((r) => r.name.startsWith('PG outage'))!;
    expect(outage.notes.breakerOpened).toBeGreaterThan(0);
    expect(outage.notes.confirmsWhileOpen).toBe(0);
    expect(outage.notes.maxCallsInOneSecondWhileOpen).toBeLessThanOrEqual(2);
  }, 600_000);

  it('keeps them on Sentinel too, through worker kills and a kill -9 of the primary', async () => {
    const results = await runChaos({ ...SHORT, scenarios: [1, 3], redis: 'sentinel', log: (l) => console.log(`[sentinel] ${l}`) });
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect({ name: r.name, lost: r.lost, notFinal: r.notFinal, doubleCharges: r.doubleCharges, mismatches: r.mismatches, status429: r.status429, repaired: r.repaired }).toEqual({
        name: r.name, lost: 0, notFinal: 0, doubleCharges: 0, mismatches: 0, status429: 0, repaired: 0,
      });
      expect(r.maxInWindow).toBeLessThanOrEqual(500);
      expect(r.acknowledged).toBeGreaterThan(100);
    }
    // The kill did fail over: another node is the primary now.
    const crash = results.find((r) => r.name.startsWith('kill -9 Redis'))!;
    expect(crash.notes.primary).toMatch(/^(\d+) → (?!\1)\d+$/);
  }, 600_000);

  it('keeps them on a Redis Cluster too, through worker kills and a kill -9 of the payments\' primary', async () => {
    const results = await runChaos({ ...SHORT, scenarios: [1, 3], redis: 'cluster', log: (l) => console.log(`[cluster] ${l}`) });
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect({ name: r.name, lost: r.lost, notFinal: r.notFinal, doubleCharges: r.doubleCharges, mismatches: r.mismatches, status429: r.status429, repaired: r.repaired }).toEqual({
        name: r.name, lost: 0, notFinal: 0, doubleCharges: 0, mismatches: 0, status429: 0, repaired: 0,
      });
      expect(r.maxInWindow).toBeLessThanOrEqual(500);
      expect(r.acknowledged).toBeGreaterThan(100);
    }
    // The kill did fail over: the cluster promoted the replica.
    const crash = results.find((r) => r.name.startsWith('kill -9 Redis'))!;
    expect(crash.notes.primary).toMatch(/^(\d+) → (?!\1)\d+$/);
  }, 600_000);
});
