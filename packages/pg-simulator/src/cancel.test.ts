import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from './index.ts';
import { call, confirm, waitFor } from './test-client.ts';

describe('cancel', () => {
  let sim: RunningSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ latencyMedianMs: 0 });
  });
  afterAll(() => sim.close());
  beforeEach(() => sim.state.reset());

  const cancel = (paymentKey: string, idempotencyKey?: string, cancelReason: unknown = 'customer asked') =>
    call(sim.url, 'POST', `/v1/payments/${encodeURIComponent(paymentKey)}/cancel`, {
      body: { cancelReason },
      ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
    });

  it('cancels a DONE payment: money returned, a CANCELED row, chargeCount stays 1', async () => {
    expect((await confirm(sim.url, 'pk_c_done', { amount: 5_000 })).status).toBe(200);
    const res = await cancel('pk_c_done', 'kc1');
    expect(res.status).toBe(200);
    const payment = res.json();
    expect(payment).toMatchObject({ status: 'CANCELED', totalAmount: 5_000, balanceAmount: 0 });
    expect(payment['cancels']).toEqual([
      { cancelAmount: 5_000, cancelReason: 'customer asked', canceledAt: expect.stringMatching(/\+09:00$/), transactionKey: expect.any(String) },
    ]);
    expect(sim.state.ledgerView().payments['pk_c_done']).toMatchObject({ status: 'CANCELED', chargeCount: 1, refunded: true, canceledAt: expect.any(String) });
    expect(sim.state.ledger.transactions.map((row) => row.status)).toEqual(['DONE', 'CANCELED']);

    // Safe to repeat under another key: 200 as it is, nothing more recorded.
    const again = await cancel('pk_c_done', 'kc2');
    expect(again.status).toBe(200);
    expect(again.json()['cancels']).toHaveLength(1);
    expect(sim.state.ledger.transactions).toHaveLength(2);
  });

  it('voids an IN_PROGRESS approval: the confirm answers 403 CANCELED_DURING_PROCESSING and nothing is charged', async () => {
    sim.state.setKnobs({ latencyMedianMs: 2_000, latencyP99Ms: 2_000 });
    const pending = confirm(sim.url, 'pk_c_void', { idempotencyKey: 'k-void' });
    await waitFor(() => sim.state.ledger.byPaymentKey('pk_c_void') !== undefined);
    const res = await cancel('pk_c_void', 'kc-void');
    expect([res.status, res.json().status]).toEqual([200, 'CANCELED']);
    // Contract: CANCELED from the moment the cancel is accepted, while the approval still runs.
    expect((await call(sim.url, 'GET', '/v1/payments/pk_c_void')).json().status).toBe('CANCELED');
    const answer = await pending;
    expect([answer.status, answer.json().code]).toEqual([403, 'CANCELED_DURING_PROCESSING']);
    expect(sim.state.ledgerView().payments['pk_c_void']).toMatchObject({ status: 'CANCELED', chargeCount: 0, refunded: false });
    expect(sim.state.ledger.transactions).toHaveLength(0);
    // The 403 is stored; another key meets an already processed payment.
    const replay = await confirm(sim.url, 'pk_c_void', { idempotencyKey: 'k-void' });
    expect([replay.status, replay.headers['idempotent-replayed']]).toEqual([403, 'true']);
    sim.state.setKnobs({ latencyMedianMs: 0, latencyP99Ms: 1_500 });
  });

  it('answers NOT_FOUND for a never-confirmed payment, stores nothing, and a later confirm is processed normally', async () => {
    const res = await cancel('pk_c_never', 'kc-never');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ paymentKey: 'pk_c_never', status: 'NOT_FOUND', cancels: [] });
    expect(sim.state.ledger.payments.size).toBe(0);
    const repeat = await cancel('pk_c_never', 'kc-never');
    expect(repeat.headers['idempotent-replayed']).toBeUndefined();

    expect((await confirm(sim.url, 'pk_c_never')).status).toBe(200);
    // The NOT_FOUND was not stored, so the same key now cancels the DONE payment.
    const later = await cancel('pk_c_never', 'kc-never');
    expect(later.json().status).toBe('CANCELED');
    expect(sim.state.ledgerView().payments['pk_c_never']).toMatchObject({ chargeCount: 1, refunded: true });
  });

  it('answers an ABORTED payment as it is', async () => {
    await confirm(sim.url, 'sim_decline_c1');
    const res = await cancel('sim_decline_c1');
    expect([res.status, res.json().status]).toEqual([200, 'ABORTED']);
    expect(res.json()['cancels']).toEqual([]);
  });

  it('answers 400 INVALID_REQUEST for a cancelReason over 200 characters or a missing one', async () => {
    await confirm(sim.url, 'pk_c_bad');
    for (const body of [{ cancelReason: 'r'.repeat(201) }, {}]) {
      const res = await call(sim.url, 'POST', '/v1/payments/pk_c_bad/cancel', { body });
      expect([res.status, res.json().code]).toEqual([400, 'INVALID_REQUEST']);
    }
    expect(sim.state.ledger.byPaymentKey('pk_c_bad')?.status).toBe('DONE');
  });

  const partial = (paymentKey: string, cancelAmount: number, idempotencyKey: string) =>
    call(sim.url, 'POST', `/v1/payments/${encodeURIComponent(paymentKey)}/cancel`, { body: { cancelReason: 'part', cancelAmount }, idempotencyKey });

  it('cancels part of an approval: PARTIAL_CANCELED with the balance, one row per cancel, CANCELED at 0', async () => {
    await confirm(sim.url, 'pk_c_part', { amount: 10_000 });
    const first = await partial('pk_c_part', 3_000, 'kp1');
    expect(first.status).toBe(200);
    expect(first.json()).toMatchObject({ status: 'PARTIAL_CANCELED', totalAmount: 10_000, balanceAmount: 7_000 });
    // More than the balance: 400 NOT_CANCELABLE_AMOUNT, nothing changes.
    const over = await partial('pk_c_part', 7_001, 'kp2');
    expect([over.status, over.json().code]).toEqual([400, 'NOT_CANCELABLE_AMOUNT']);
    expect((await call(sim.url, 'GET', '/v1/payments/pk_c_part')).json()).toMatchObject({ status: 'PARTIAL_CANCELED', balanceAmount: 7_000 });
    // No amount: the whole balance that is left.
    const rest = await cancel('pk_c_part', 'kp3');
    expect(rest.json()).toMatchObject({ status: 'CANCELED', balanceAmount: 0 });
    expect((rest.json()['cancels'] as { cancelAmount: number }[]).map((c) => c.cancelAmount)).toEqual([3_000, 7_000]);
    expect(sim.state.ledger.transactions.map((row) => [row.status, row.amount])).toEqual([
      ['DONE', 10_000],
      ['PARTIAL_CANCELED', 3_000],
      ['CANCELED', 7_000],
    ]);
    expect(sim.state.ledgerView().payments['pk_c_part']).toMatchObject({ chargeCount: 1, refundedAmount: 10_000 });
    // A partial cancel of a CANCELED payment.
    const late = await partial('pk_c_part', 1, 'kp4');
    expect([late.status, late.json().code]).toEqual([400, 'ALREADY_CANCELED_PAYMENT']);
  });

  it('cancel faults: a commit answered 500 or dropped is not stored, so the same key cancels again; a slow one is 409 meanwhile', async () => {
    await confirm(sim.url, 'pk_c_fault', { amount: 10_000 });
    sim.state.setKnobs({ cancelCommitErrorRate: 1 });
    const first = await partial('pk_c_fault', 1_000, 'kf1');
    expect([first.status, first.json().code]).toEqual([500, 'FAILED_INTERNAL_SYSTEM_PROCESSING']);
    expect(sim.state.ledgerView().payments['pk_c_fault']).toMatchObject({ refundedAmount: 1_000 });
    // The contract's hazard: the same key after a 5xx is processed afresh.
    await partial('pk_c_fault', 1_000, 'kf1');
    expect(sim.state.ledgerView().payments['pk_c_fault']).toMatchObject({ refundedAmount: 2_000 });

    sim.state.setKnobs({ cancelCommitErrorRate: 0, cancelDropRate: 1 });
    await expect(partial('pk_c_fault', 1_000, 'kf2')).rejects.toThrow();
    expect(sim.state.ledgerView().payments['pk_c_fault']).toMatchObject({ refundedAmount: 3_000 });

    sim.state.setKnobs({ cancelDropRate: 0, cancelSlowRate: 1, cancelSlowMs: 300 });
    const slow = partial('pk_c_fault', 1_000, 'kf3');
    await new Promise((r) => setTimeout(r, 100));
    // Not committed yet: the query shows no new cancel, and a repeat of the key is 409.
    expect((await call(sim.url, 'GET', '/v1/payments/pk_c_fault')).json().balanceAmount).toBe(7_000);
    const meanwhile = await partial('pk_c_fault', 1_000, 'kf3');
    expect([meanwhile.status, meanwhile.json().code]).toEqual([409, 'IDEMPOTENT_REQUEST_PROCESSING']);
    expect((await slow).json().balanceAmount).toBe(6_000);
    sim.state.setKnobs({ cancelSlowRate: 0 });
  });

  it('a new key is a new cancel: the same partial cancel under two keys refunds twice; the same key replays', async () => {
    await confirm(sim.url, 'pk_c_twice', { amount: 10_000 });
    expect((await partial('pk_c_twice', 2_000, 'kt1')).status).toBe(200);
    const replay = await partial('pk_c_twice', 2_000, 'kt1');
    expect([replay.headers['idempotent-replayed'], replay.json().balanceAmount]).toEqual(['true', 8_000]);
    expect((await partial('pk_c_twice', 2_000, 'kt2')).json().balanceAmount).toBe(6_000);
    expect(sim.state.ledgerView().payments['pk_c_twice']).toMatchObject({ status: 'PARTIAL_CANCELED', refundedAmount: 4_000 });
  });

  it('refuses a partial cancel of an approval under way or of an ABORTED payment, and a bad amount', async () => {
    sim.state.setKnobs({ latencyMedianMs: 1_000, latencyP99Ms: 1_000 });
    const pending = confirm(sim.url, 'pk_c_ip', { amount: 5_000 });
    await waitFor(() => sim.state.ledger.byPaymentKey('pk_c_ip') !== undefined);
    const res = await partial('pk_c_ip', 1_000, 'ki1');
    expect([res.status, res.json().code]).toEqual([400, 'NOT_CANCELABLE_PAYMENT']);
    expect((await pending).status).toBe(200);
    sim.state.setKnobs({ latencyMedianMs: 0, latencyP99Ms: 1_500 });
    await confirm(sim.url, 'sim_decline_c2');
    const aborted = await partial('sim_decline_c2', 1, 'ki2');
    expect([aborted.status, aborted.json().code]).toEqual([400, 'NOT_CANCELABLE_PAYMENT']);
    for (const cancelAmount of [0, -5, 1.5, '100']) {
      const bad = await call(sim.url, 'POST', '/v1/payments/pk_c_ip/cancel', { body: { cancelReason: 'x', cancelAmount } });
      expect([bad.status, bad.json().code]).toEqual([400, 'INVALID_REQUEST']);
    }
    expect(sim.state.ledgerView().payments['pk_c_ip']).toMatchObject({ status: 'DONE', refundedAmount: 0 });
  });

  it('counts lengths in UTF-16 code units: a reason of 100 emoji (200 units) passes, 101 do not', async () => {
    await confirm(sim.url, 'pk_c_emoji');
    const over = await call(sim.url, 'POST', '/v1/payments/pk_c_emoji/cancel', { body: { cancelReason: '😀'.repeat(101) } });
    expect([over.status, over.json().code]).toEqual([400, 'INVALID_REQUEST']);
    const ok = await call(sim.url, 'POST', '/v1/payments/pk_c_emoji/cancel', { body: { cancelReason: '😀'.repeat(100) } });
    expect([ok.status, ok.json().status]).toEqual([200, 'CANCELED']);
  });
});
