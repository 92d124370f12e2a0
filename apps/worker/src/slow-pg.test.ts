/**
 * A PG that is slow but answers, scaled down: the connection cap binds, a tenth of the confirms
 * hang for seconds, and the read timeout follows the PG. Checked: every payment final and equal
 * to the PG's ledger, the connection cap never passed, PG calls per payment bounded, nothing
 * cancelled; and the breaker stays closed under slowness but opens under refusals.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './test-harness.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const CAP = 30;

describe('a slow PG', () => {
  it('300 payments with 10% of confirms hanging 3–5 s: all APPROVED as the PG holds them, cap kept, ≤ 1.6 calls each, no cancel', async () => {
    h = await startHarness(
      { latencyMedianMs: 30, latencyP99Ms: 300, longApprovalRate: 0.1, longApprovalMinMs: 3_000, longApprovalMaxMs: 5_000, maxConnections: CAP, seed: 11 },
      {
        PG_CONNECTIONS_TOTAL: CAP, PG_CONNECTIONS_HEADROOM: 2, PG_CONNECTIONS_RESERVED: 4,
        PG_HEADERS_TIMEOUT_MIN_MS: 300, PG_HEADERS_TIMEOUT_MS: 8_000,
        RESOLVE_FIRST_INQUIRY_DELAY_MS: 1_000, RETRY_BACKOFF_MAX_MS: 5_000,
      },
    );
    const harness = h;
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push(await harness.pay(`pk_slow_${i}`));
    const recs = await harness.settle(ids, 90_000);
    expect(recs.filter((r) => r.phase !== 'final')).toEqual([]);
    expect(recs.every((r) => r.status === 'APPROVED')).toBe(true);

    const ledger = harness.ledger();
    for (const r of recs) {
      expect(ledger[r.paymentKey], r.paymentKey).toMatchObject({ status: 'DONE', chargeCount: 1, confirmKeys: 1 });
    }
    const stats = harness.sim.state.stats();
    // The cap held (hung confirms closed at the read timeout), nothing was refused.
    expect(stats.peakConnections).toBeLessThanOrEqual(CAP);
    expect([stats.status503, stats.status429]).toEqual([0, 0]);
    // Hung confirms were cut at the adaptive timeout (well below the 8 s bound) and resolved by
    // inquiry, without a cancel.
    const inDoubt = recs.filter((r) => r.inDoubtAt !== null);
    expect(inDoubt.length).toBeGreaterThanOrEqual(10);
    expect(harness.worker.pg.stats().readTimeouts.confirm.timeoutMs).toBeLessThan(8_000);
    expect(recs.every((r) => r.cancels === 0)).toBe(true);
    const calls = recs.reduce((a, r) => a + r.pgCalls, 0) / recs.length;
    expect(calls).toBeLessThanOrEqual(1.6);
    // And the breaker stayed closed: slow is not failing.
    expect(Number((await harness.worker.store.counters())['breaker:opened'] ?? 0)).toBe(0);
  });

  it('the breaker opens when the PG refuses, not when its adaptive timeouts cut slow calls', async () => {
    h = await startHarness(
      { latencyMedianMs: 5, latencyP99Ms: 20, longApprovalRate: 0.2, longApprovalMinMs: 3_000, longApprovalMaxMs: 3_000, seed: 5 },
      {
        // A small share, so that the hung confirms hold it and the adaptive timeout applies.
        PG_CONNECTIONS_TOTAL: 20, PG_CONNECTIONS_HEADROOM: 2, PG_CONNECTIONS_RESERVED: 4,
        PG_HEADERS_TIMEOUT_MIN_MS: 200, PG_HEADERS_TIMEOUT_MS: 5_000, BREAKER_CONSECUTIVE_FAILURES: 5, BREAKER_MIN_CALLS: 10,
      },
    );
    const harness = h;
    const ids: string[] = [];
    for (let i = 0; i < 120; i++) ids.push(await harness.pay(`pk_brk_${i}`));
    const recs = await harness.settle(ids, 60_000);
    expect(recs.every((r) => r.status === 'APPROVED')).toBe(true);
    // A fifth of the confirms were cut by the adaptive timeout: in doubt, and no failure.
    expect(recs.filter((r) => r.inDoubtAt !== null).length).toBeGreaterThanOrEqual(5);
    expect(Number((await harness.worker.store.counters())['breaker:opened'] ?? 0)).toBe(0);

    // Now the PG refuses connections: the breaker opens.
    harness.sim.state.setKnobs({ outage: 'refuse' });
    const more: string[] = [];
    for (let i = 0; i < 20; i++) more.push(await harness.pay(`pk_brk_refused_${i}`));
    await expect.poll(async () => Number((await harness.worker.store.counters())['breaker:opened'] ?? 0), { timeout: 20_000, interval: 100 }).toBeGreaterThan(0);
    harness.sim.state.setKnobs({ outage: 'none' });
    const after = await harness.settle(more, 60_000);
    expect(after.every((r) => r.status === 'APPROVED')).toBe(true);
  });
});
