/**
 * The worker against the simulator (port 0) and real Redis: the plain outcomes of a confirm.
 * Each case asserts Sluice's final state and the PG's ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confirmKey } from './driver.ts';
import { startHarness, type Harness } from './test-harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe('worker → PG', () => {
  it('approves: APPROVED with the PG transactionKey, charged once', async () => {
    const id = await h.pay('sim_approve_w1', 15_000);
    const [rec] = await h.settle([id]);
    expect(rec).toMatchObject({ status: 'APPROVED', phase: 'final', attempts: 1 });
    expect(rec!.transactionKey).toBeTruthy();
    expect(h.ledger()['sim_approve_w1']).toMatchObject({ status: 'DONE', chargeCount: 1 });
  });

  it('declines: DECLINED with the PG code, never retried', async () => {
    const id = await h.pay('sim_decline_w2');
    const [rec] = await h.settle([id]);
    expect(rec!.status).toBe('DECLINED');
    expect(rec!.failure?.code).toMatch(/REJECT_CARD_COMPANY|INVALID_CARD_EXPIRATION|EXCEED_MAX_AMOUNT|NOT_ENOUGH_BALANCE/);
    expect(rec!.attempts).toBe(1);
    expect(h.ledger()['sim_decline_w2']).toMatchObject({ status: 'ABORTED', chargeCount: 0, confirmArrivals: 1 });
  });

  it('unknown session: FAILED NOT_FOUND_PAYMENT_SESSION, nothing at the PG', async () => {
    const id = await h.pay('sim_nosession_w3');
    const [rec] = await h.settle([id]);
    expect(rec).toMatchObject({ status: 'FAILED', failure: { code: 'NOT_FOUND_PAYMENT_SESSION' } });
    expect(h.ledger()['sim_nosession_w3']?.chargeCount ?? 0).toBe(0);
  });

  it('sends the confirm with an Idempotency-Key derived from the payment id', () => {
    expect(confirmKey('pay_x')).toBe('sluice.pay_x.confirm');
  });
});
