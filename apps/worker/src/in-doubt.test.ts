/**
 * Money in doubt: one integration test per row of the outcome table, each asserting Sluice's
 * final state AND the PG's ledger (charge count ≤ 1, the same final state). Real Redis, the
 * simulator in this process (port 0), PG_HEADERS_TIMEOUT_MS = 1 s.
 */
import { Pool } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './test-harness.ts';

let h: Harness;
beforeAll(async () => {
  // A long approval (4.5–5 s) is far past the first inquiry (read timeout 1 s + 0.7 s), so that
  // inquiry sees IN_PROGRESS even when a loaded machine delays it by seconds; a late answer (3 s)
  // is far past the read timeout, so it is one even when the worker stalls.
  h = await startHarness(
    { lateMs: 3_000, longApprovalMinMs: 4_500, longApprovalMaxMs: 5_000 },
    { RESOLVE_FIRST_INQUIRY_DELAY_MS: 700, RETRY_BACKOFF_BASE_MS: 300 },
  );
});
afterAll(async () => {
  await h?.close();
});
beforeEach(() => {
  h.sim.state.setKnobs({ ambiguousNoCommitRate: 0, providerErrorNoCommitRate: 0, rateLimit: 500, outage: 'none' });
});

const charged = (key: string) => h.ledger()[key]?.chargeCount ?? 0;
/**
 * Confirms that reached the PG. (The record's `attempts` counts guard passes, which include a try
 * held back on our side before anything was written, e.g. every send slot late on a loaded box.)
 */
const arrived = (key: string) => h.ledger()[key]?.confirmArrivals ?? 0;

/** Waits until the PG has seen a confirm for `key`; fails the test if it never does. */
async function confirmArrived(key: string): Promise<void> {
  await expect.poll(() => h.ledger()[key]?.confirmArrivals ?? 0, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);
}

describe('in doubt → inquiry → final, matching the PG', () => {
  it('answer after the read timeout (the charge commits): APPROVED via inquiry, charged once', async () => {
    const id = await h.pay('sim_late_d1');
    const [rec] = await h.settle([id]);
    expect(rec!.status).toBe('APPROVED');
    expect(arrived('sim_late_d1')).toBe(1);
    expect(rec!.inDoubtAt).not.toBeNull();
    expect(h.ledger()['sim_late_d1']).toMatchObject({ status: 'DONE', chargeCount: 1 });
  });

  it('connection dropped after the commit: APPROVED via inquiry, charged once', async () => {
    const id = await h.pay('sim_drop_d2');
    const [rec] = await h.settle([id]);
    expect(rec!.status).toBe('APPROVED');
    expect(arrived('sim_drop_d2')).toBe(1);
    expect(h.ledger()['sim_drop_d2']).toMatchObject({ status: 'DONE', chargeCount: 1 });
  });

  it('500 after committing: APPROVED via inquiry', async () => {
    const id = await h.pay('sim_ambiguous_commit_d3');
    const [rec] = await h.settle([id]);
    expect(rec!.status).toBe('APPROVED');
    expect(charged('sim_ambiguous_commit_d3')).toBe(1);
  });

  it('502 after committing: APPROVED via inquiry', async () => {
    const id = await h.pay('sim_provider_commit_d4');
    const [rec] = await h.settle([id]);
    expect(rec!.status).toBe('APPROVED');
    expect(charged('sim_provider_commit_d4')).toBe(1);
  });

  it('500 without a commit: the PG holds nothing, so a re-confirm with the same key charges once', async () => {
    h.sim.state.setKnobs({ ambiguousNoCommitRate: 1 });
    const id = await h.pay('pk_nocommit_d5');
    // Turn the fault off once the first confirm has been answered.
    await confirmArrived('pk_nocommit_d5');
    h.sim.state.setKnobs({ ambiguousNoCommitRate: 0 });
    const [rec] = await h.settle([id]);
    expect(rec).toMatchObject({ status: 'APPROVED', reconfirms: 1 });
    expect(arrived('pk_nocommit_d5')).toBe(2);
    expect(h.ledger()['pk_nocommit_d5']).toMatchObject({ status: 'DONE', chargeCount: 1 });
  });

  it('502 that never commits, every time: bounded re-confirms, then a cancel finds nothing → FAILED', async () => {
    const id = await h.pay('sim_provider_nocommit_d6');
    const [rec] = await h.settle([id], 40_000);
    expect(rec).toMatchObject({ status: 'FAILED', failure: { code: 'NOT_PROCESSED_BY_PG' }, reconfirms: 2 });
    expect(charged('sim_provider_nocommit_d6')).toBe(0);
  });

  it('unknown Payment status in a 200 (READY): in doubt + alert, then the inquiry says DONE', async () => {
    const id = await h.pay('sim_unknown_status_d7');
    const [rec] = await h.settle([id]);
    expect(rec!.status).toBe('APPROVED');
    expect(h.ledger()['sim_unknown_status_d7']).toMatchObject({ status: 'DONE', chargeCount: 1 });
  });

  it('unknown error code: never final by guess; ends FAILED only after the PG says it holds nothing', async () => {
    const id = await h.pay('sim_unknown_code_d8');
    const [rec] = await h.settle([id], 40_000);
    expect(rec!.status).toBe('FAILED');
    expect(rec!.failure?.code).toBe('NOT_PROCESSED_BY_PG');
    expect(charged('sim_unknown_code_d8')).toBe(0);
  });

  it('approval still IN_PROGRESS when inquired: keeps asking until DONE', async () => {
    const id = await h.pay('sim_long_d9');
    const [rec] = await h.settle([id]);
    expect(rec!.status).toBe('APPROVED');
    expect(rec!.answeredInquiries).toBeGreaterThanOrEqual(1);
    expect(h.ledger()['sim_long_d9']).toMatchObject({ status: 'DONE', chargeCount: 1 });
  });

  it('400 ALREADY_PROCESSED_PAYMENT (confirmed elsewhere under another key): inquiry learns DONE', async () => {
    const pool = new Pool(h.sim.url);
    const res = await pool.request({
      method: 'POST', path: '/v1/payments/confirm',
      headers: { authorization: `Basic ${Buffer.from('test_sk_sluice_demo:').toString('base64')}`, 'content-type': 'application/json', 'idempotency-key': 'merchant-own-key' },
      body: JSON.stringify({ paymentKey: 'pk_elsewhere_d10', orderId: 'order-elsewhere-d10', amount: 1_000 }),
    });
    await res.body.text();
    await pool.close();
    const id = await h.pay('pk_elsewhere_d10');
    const [rec] = await h.settle([id]);
    expect(rec!.status).toBe('APPROVED');
    expect(charged('pk_elsewhere_d10')).toBe(1);
  });

  it('400 INVALID_REQUEST: FAILED, final, nothing charged', async () => {
    const id = await h.pay('pk_invalid_d11', 0);
    const [rec] = await h.settle([id]);
    expect(rec).toMatchObject({ status: 'FAILED', failure: { code: 'INVALID_REQUEST' } });
    expect(charged('pk_invalid_d11')).toBe(0);
  });

  it('429 slipping past the gate: counted, retried with the same key, charged once', async () => {
    h.sim.state.setKnobs({ rateLimit: 1 });
    const ids = await Promise.all(['pk_429_a', 'pk_429_b', 'pk_429_c'].map((k) => h.pay(k)));
    // The limit stays at 1/s until a 429 has gone out.
    await expect.poll(() => h.sim.state.stats().status429, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);
    h.sim.state.setKnobs({ rateLimit: 500 });
    const recs = await h.settle(ids);
    expect(recs.map((r) => r.status)).toEqual(['APPROVED', 'APPROVED', 'APPROVED']);
    // The sender thread reports its figures every 500 ms.
    await expect.poll(() => h.worker.pg.stats().rateLimited, { timeout: 5_000 }).toBeGreaterThan(0);
    for (const k of ['pk_429_a', 'pk_429_b', 'pk_429_c']) expect(charged(k)).toBe(1);
  });
});

describe('cancel fallback and the phase guard', () => {
  it('no final answer by the deadline: cancel voids the approval under way → CANCELED, not charged', async () => {
    const h2 = await startHarness(
      { longApprovalMinMs: 8_000, longApprovalMaxMs: 8_000 },
      { RESOLVE_CANCEL_AFTER_MS: 3_000, RESOLVE_FIRST_INQUIRY_DELAY_MS: 300, RETRY_BACKOFF_BASE_MS: 300 },
    );
    try {
      const id = await h2.pay('sim_long_c1');
      const [rec] = await h2.settle([id], 20_000);
      expect(rec).toMatchObject({ status: 'CANCELED', failure: { code: 'CANCELED_BY_SLUICE' } });
      const pg = h2.ledger()['sim_long_c1'];
      expect(pg).toMatchObject({ status: 'CANCELED', chargeCount: 0 });
      // The voided approval later answers its confirm 403 CANCELED_DURING_PROCESSING; nothing moves.
      await new Promise((r) => setTimeout(r, 200));
      expect((await h2.worker.store.get(id))!.status).toBe('CANCELED');
    } finally {
      await h2.close();
    }
  });

  it('"nothing to cancel" while an unanswered confirm sits unread at the PG: cancel again until it lands, then CANCELED as the PG holds it', async () => {
    // Every confirm of this key sits 10 s unread at the PG; each times out (1 s) and the PG
    // answers 404 / NOT_FOUND meanwhile, so Sluice reaches its cancel after ~5 s. The horizon
    // (20 s) stands in for the PG's 30-minute session.
    const h3 = await startHarness(
      { unreadMs: 10_000 },
      { RESOLVE_FIRST_INQUIRY_DELAY_MS: 300, RETRY_BACKOFF_BASE_MS: 300, RETRY_BACKOFF_MAX_MS: 1_000, LATE_CONFIRM_HORIZON_MS: 20_000 },
    );
    try {
      const id = await h3.pay('sim_unread_u1');
      const [rec] = await h3.settle([id], 40_000);
      const history = await h3.worker.store.history(id);
      // The path under test ran: a cancel found nothing, and was repeated rather than trusted.
      expect(history.some((e) => e.call === 'cancel' && e.outcome === 'nothing_at_pg' && e.step === 'retry')).toBe(true);
      // Its confirm tries all went unanswered: none is known to have been read.
      expect(rec!.confirmsSettled).toBeLessThan(rec!.attempts);
      // The first confirm was read late and charged; the repeated cancel refunded it.
      const pg = h3.ledger()['sim_unread_u1'];
      expect(pg).toMatchObject({ status: 'CANCELED', chargeCount: 1, refunded: true });
      expect(rec).toMatchObject({ status: 'CANCELED', failure: { code: 'CANCELED_BY_SLUICE' } });
    } finally {
      await h3.close();
    }
  });

  it('a stale confirm job never sends once the payment is being canceled, or is final', async () => {
    const id = await h.pay('sim_approve_g1');
    const [rec] = await h.settle([id]);
    expect(rec!.status).toBe('APPROVED');
    const arrivals = h.ledger()['sim_approve_g1']!.confirmArrivals;
    // Re-deliver a confirm for the final payment under another job id.
    await h.worker.queues.confirm.add('confirm', { paymentId: id }, { jobId: `${id}.stale` });
    // And for a payment parked in `canceling`.
    const id2 = await h.pay('sim_long_g2');
    await h.worker.redis.hset(h.worker.store.keys.payment(id2), 'phase', 'canceling');
    await h.worker.queues.confirm.add('confirm', { paymentId: id2 }, { jobId: `${id2}.stale` });
    await new Promise((r) => setTimeout(r, 1_500));
    expect(h.ledger()['sim_approve_g1']!.confirmArrivals).toBe(arrivals);
    expect(h.ledger()['sim_long_g2']?.confirmArrivals ?? 0).toBeLessThanOrEqual(1);
    const final = await h.settle([id2], 20_000);
    expect(final[0]!.status).toMatch(/CANCELED|FAILED/);
    expect(charged('sim_long_g2')).toBe(0);
  });

  it('a re-delivered confirm while the first is still running gets 409 and resolves by inquiry, charged once', async () => {
    const id = await h.pay('sim_long_r1');
    await confirmArrived('sim_long_r1');
    await h.worker.queues.confirm.add('confirm', { paymentId: id }, { jobId: `${id}.again` });
    const [rec] = await h.settle([id]);
    expect(rec!.status).toBe('APPROVED');
    expect(h.ledger()['sim_long_r1']).toMatchObject({ status: 'DONE', chargeCount: 1 });
    const history = await h.worker.store.history(id);
    expect(history.some((e) => String(e.outcome) === 'in_progress')).toBe(true);
  });
});
