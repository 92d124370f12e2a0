/**
 * Merchant cancels against the simulator's ledger: partial refunds racing each other while the
 * PG commits a cancel then answers 500, commits then drops the connection, or commits late (past
 * the read timeout); a full cancel of a payment being confirmed (the PG's void); a cancel of a
 * payment still queued. Real Redis, the simulator in this process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCancelId, RefundStore, refundStoreOptionsOf, type PaymentRecord } from '@sluice/store';
import { startHarness, type Harness } from './test-harness.ts';

let h: Harness;
let refunds: RefundStore;
beforeAll(async () => {
  h = await startHarness(
    // A slow cancel commits 1.5 s after it arrived: past the 1 s read timeout, so Sluice's query
    // first sees nothing, then finds it. A long approval (3–4 s) leaves time to cancel it.
    { cancelSlowMs: 1_500, longApprovalMinMs: 3_000, longApprovalMaxMs: 4_000 },
    { REFUND_SETTLE_MS: 15_000, RETRY_BACKOFF_BASE_MS: 300, RETRY_BACKOFF_MAX_MS: 1_000 },
  );
  refunds = new RefundStore(h.worker.redis, refundStoreOptionsOf(h.config), h.config.PG_PROVIDER);
});
afterAll(async () => {
  await h?.close();
});

let n = 0;
/** The payment cancelled at the PG's console (not through Sluice): reconciliation must find that cancel. */
let consoleCanceled = '';
const ask = (paymentId: string, amount: number | null) =>
  refunds.request({ paymentId, merchantId: 'm1', cancelId: newCancelId(), amount, reason: 'returned', idemKeyHash: `k-${++n}`, fingerprint: `f-${n}` });

/** Waits until no cancel of these payments is PENDING; returns the records. */
async function refundsSettled(ids: string[], timeoutMs = 40_000): Promise<PaymentRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const recs = (await Promise.all(ids.map((id) => h.worker.store.get(id)))).map((r) => r!);
    if (recs.every((r) => r.refunds.every((c) => c.status !== 'PENDING'))) return recs;
    if (Date.now() > deadline) throw new Error(`cancels still pending: ${recs.filter((r) => r.refunds.some((c) => c.status === 'PENDING')).length}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const pgRecord = (paymentKey: string) => h.sim.state.ledger.byPaymentKey(paymentKey)!;

describe('refunds of approved payments', () => {
  it('racing partial cancels under cancel faults: never beyond the balance, each refunded once, Sluice equal to the PG to the won', async () => {
    const ids = await Promise.all(Array.from({ length: 24 }, (_, i) => h.pay(`pk_refund_${i}`, 10_000)));
    const approved = await h.settle(ids);
    expect(approved.every((r) => r.status === 'APPROVED')).toBe(true);

    h.sim.state.setKnobs({ cancelCommitErrorRate: 0.2, cancelDropRate: 0.2, cancelSlowRate: 0.2 });
    try {
      // Per payment, at once: 3,000 + 4,000 + the rest (3,000) fit; a fourth of 1 does not.
      const asked = await Promise.all(ids.flatMap((id) => [ask(id, 3_000), ask(id, 4_000), ask(id, null), ask(id, 1)]));
      const kinds = asked.map((a) => a.kind);
      expect(kinds.filter((k) => k === 'ok')).toHaveLength(ids.length * 3);
      expect(kinds.filter((k) => k === 'exceeds')).toHaveLength(ids.length);
      const recs = await refundsSettled(ids);

      for (const r of recs) {
        const pg = pgRecord(r.paymentKey);
        const done = r.refunds.filter((c) => c.status === 'SUCCEEDED');
        // Every cancel Sluice holds done is one of the PG's, each once; the PG holds no other.
        expect(done.map((c) => c.pgTransactionKey).sort()).toEqual(pg.cancels.map((c) => c.transactionKey).sort());
        expect(r.canceledAmount).toBe(pg.refundedAmount);
        expect(pg.refundedAmount).toBeLessThanOrEqual(r.amount);
        expect(r.reservedAmount).toBe(0);
        // All three fit the balance: all done, the payment CANCELED here and at the PG.
        expect(done).toHaveLength(3);
        expect([r.status, pg.status]).toEqual(['CANCELED', 'CANCELED']);
      }
      // The faults were met: some cancels went in doubt and were settled by queries.
      const checked = recs.filter((r) => r.pgCalls > 1 + 3);
      expect(checked.length).toBeGreaterThan(0);
    } finally {
      h.sim.state.setKnobs({ cancelCommitErrorRate: 0, cancelDropRate: 0, cancelSlowRate: 0 });
    }
  });

  it('a refund the PG refuses fails with its code, and releases its amount', async () => {
    const id = await h.pay('pk_refund_refused', 5_000);
    consoleCanceled = id;
    await h.settle([id]);
    // The PG's balance is lower than Sluice's view (a cancel made at the PG's console, say).
    h.sim.state.ledger.cancel(pgRecord('pk_refund_refused'), 'console', 4_000, Date.now());
    expect((await ask(id, 2_000)).kind).toBe('ok');
    const [r] = await refundsSettled([id]);
    expect(r!.refunds).toMatchObject([{ status: 'FAILED', failure: { code: 'NOT_CANCELABLE_AMOUNT' } }]);
    expect([r!.reservedAmount, r!.canceledAmount, r!.status]).toEqual([0, 0, 'APPROVED']);
  });
});

describe('reconciliation of refunds', () => {
  it('a refund ended FAILED that the PG committed after all is recorded SUCCEEDED, the balance with it', async () => {
    const id = await h.pay('pk_refund_late', 6_000);
    await h.settle([id]);
    // Sluice's side: the cancel went out, no trace of it came back in time, so it ended FAILED.
    await ask(id, 2_000);
    const c = (await h.worker.store.get(id))!.refunds[0]!;
    await h.worker.redis.zrem(refunds.keys.refundDue, id);
    expect((await refunds.guard({ paymentId: id, cancelId: c.id, op: 'send' })).ok).toBe(true);
    await refunds.settle(id, c.id, { do: 'fail', failure: { code: 'NOT_CANCELED_BY_PG', message: 'no trace' } }, {});
    // The PG's side: it committed after all.
    h.sim.state.ledger.cancel(pgRecord('pk_refund_late'), 'returned', 2_000, Date.now());
    const report = await h.worker.reconciler.run();
    expect(report.complete).toBe(true);
    const r = (await h.worker.store.get(id))!;
    expect(r.refunds).toMatchObject([{ id: c.id, status: 'SUCCEEDED', pgTransactionKey: pgRecord('pk_refund_late').cancels[0]!.transactionKey }]);
    expect([r.canceledAmount, r.status]).toEqual([2_000, 'APPROVED']);
    expect(report.findings).toContainEqual(expect.objectContaining({ paymentId: id, kind: 'repaired' }));
    // The payments refunded in full and in part before (earlier in this file) all match; the one
    // cancelled at the PG's console is recorded (by this run, or by a scheduled one before it).
    expect(report.findings.filter((f) => f.paymentId !== id && f.paymentId !== consoleCanceled)).toEqual([]);
    const consoled = (await h.worker.store.get(consoleCanceled))!;
    expect(consoled.refunds.filter((c) => c.status === 'SUCCEEDED').map((c) => c.amount)).toEqual([4_000]);
    expect(consoled.canceledAmount).toBe(4_000);
    // A second run finds nothing more to record.
    const again = await h.worker.reconciler.run();
    expect(again.findings.filter((f) => f.paymentId === id)).toEqual([]);
  });
});

describe('cancels before approval', () => {
  it('PROCESSING, in full: the PG voids the approval under way; the card is never charged', async () => {
    const id = await h.pay('sim_long_void1', 7_000);
    await expect.poll(async () => (await h.worker.store.get(id))?.phase, { timeout: 10_000, interval: 20 }).not.toBe('queued');
    expect((await ask(id, 2_000)).kind).toBe('not_yet');
    expect((await ask(id, null)).kind).toBe('ok');
    const [r] = await h.settle([id], 20_000);
    expect(r!.status).toBe('CANCELED');
    expect(r!.refunds).toMatchObject([{ kind: 'void', status: 'SUCCEEDED', amount: 7_000 }]);
    expect(h.ledger()['sim_long_void1']).toMatchObject({ status: 'CANCELED', chargeCount: 0 });
  });

  it('QUEUED: CANCELED at once and never sent', async () => {
    // The breaker open holds admission: the payment stays queued.
    await h.worker.redis.hset(h.worker.keys.breaker, 'state', 'open', 'openUntil', Date.now() + 60_000);
    try {
      const id = await h.pay('pk_queued_cancel', 3_000);
      expect((await h.worker.store.get(id))!.phase).toBe('queued');
      expect((await ask(id, null)).kind).toBe('ok');
      const r = (await h.worker.store.get(id))!;
      expect([r.status, r.phase]).toEqual(['CANCELED', 'final']);
    } finally {
      await h.worker.redis.del(h.worker.keys.breaker);
    }
    await new Promise((r) => setTimeout(r, 1_000));
    expect(h.ledger()['pk_queued_cancel']).toBeUndefined();
  });
});
