import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from './index.ts';
import { call, confirm } from './test-client.ts';

const DECLINE_CODES = ['REJECT_CARD_COMPANY', 'INVALID_CARD_EXPIRATION', 'EXCEED_MAX_AMOUNT', 'NOT_ENOUGH_BALANCE'];

describe('confirm', () => {
  let sim: RunningSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ latencyMedianMs: 0 });
  });
  afterAll(() => sim.close());
  beforeEach(() => sim.state.reset());

  it('approves: 200 DONE, one charge, one DONE row, visible by key and by orderId', async () => {
    const res = await confirm(sim.url, 'pk_ok_1', { orderId: 'order_ok_1', amount: 15_000, idempotencyKey: 'k1' });
    expect(res.status).toBe(200);
    const payment = res.json();
    expect(payment).toMatchObject({ paymentKey: 'pk_ok_1', orderId: 'order_ok_1', status: 'DONE', totalAmount: 15_000, balanceAmount: 15_000, cancels: [], failure: null });
    expect(typeof payment['approvedAt']).toBe('string');
    expect(String(payment['approvedAt'])).toMatch(/\+09:00$/);
    expect(Object.keys(payment).sort()).toEqual(['approvedAt', 'balanceAmount', 'cancels', 'failure', 'orderId', 'paymentKey', 'status', 'totalAmount', 'transactionKey'].sort());

    const entry = sim.state.ledgerView().payments['pk_ok_1'];
    expect(entry).toMatchObject({ status: 'DONE', chargeCount: 1, refunded: false, orderId: 'order_ok_1', amount: 15_000, confirmArrivals: 1 });
    expect(sim.state.ledger.transactions.map((row) => row.status)).toEqual(['DONE']);

    const byKey = await call(sim.url, 'GET', '/v1/payments/pk_ok_1');
    expect(byKey.text).toBe(res.text);
    const byOrder = await call(sim.url, 'GET', '/v1/payments/orders/order_ok_1');
    expect(byOrder.text).toBe(res.text);
  });

  it('declines: 403 with a decline code, ABORTED, no charge and no row', async () => {
    const res = await confirm(sim.url, 'pk_dec_1', { headers: { 'x-sim-scenario': 'decline' } });
    expect(res.status).toBe(403);
    expect(DECLINE_CODES).toContain(res.json().code);
    expect(sim.state.ledgerView().payments['pk_dec_1']).toMatchObject({ status: 'ABORTED', chargeCount: 0 });
    expect(sim.state.ledger.transactions).toHaveLength(0);
    const inquiry = (await call(sim.url, 'GET', '/v1/payments/pk_dec_1')).json();
    expect(inquiry['status']).toBe('ABORTED');
    expect(inquiry['failure']).toMatchObject({ code: res.json().code });
  });

  it('answers 404 NOT_FOUND_PAYMENT_SESSION for sim_nosession_ and sim_expired_ keys, recording nothing', async () => {
    for (const key of ['sim_nosession_1', 'sim_expired_1']) {
      const res = await confirm(sim.url, key);
      expect(res.status).toBe(404);
      expect(res.json().code).toBe('NOT_FOUND_PAYMENT_SESSION');
      const inquiry = await call(sim.url, 'GET', `/v1/payments/${key}`);
      expect(inquiry.status).toBe(404);
      expect(inquiry.json().code).toBe('NOT_FOUND_PAYMENT');
    }
    expect(sim.state.ledger.payments.size).toBe(0);
  });

  it('answers 401 UNAUTHORIZED_KEY for a wrong or missing key, and charges nothing', async () => {
    const wrong = await confirm(sim.url, 'pk_auth', { secretKey: 'test_sk_other' });
    const missing = await confirm(sim.url, 'pk_auth', { secretKey: false });
    expect([wrong.status, missing.status]).toEqual([401, 401]);
    expect(wrong.json()).toEqual({ code: 'UNAUTHORIZED_KEY', message: expect.any(String) });
    expect(sim.state.ledger.payments.size).toBe(0);
    expect(sim.state.stats().requests).toBe(2);
  });

  it.each([
    ['a malformed JSON body', '{"paymentKey":'],
    ['a short orderId', { paymentKey: 'pk_v', orderId: 'abc', amount: 100 }],
    ['an orderId with a bad character', { paymentKey: 'pk_v', orderId: 'order#1234', amount: 100 }],
    ['a zero amount', { paymentKey: 'pk_v', orderId: 'order_v_1', amount: 0 }],
    ['a fractional amount', { paymentKey: 'pk_v', orderId: 'order_v_1', amount: 10.5 }],
    ['a paymentKey over 200 characters', { paymentKey: 'p'.repeat(201), orderId: 'order_v_1', amount: 100 }],
  ])('answers 400 INVALID_REQUEST for %s', async (_name, body) => {
    const res = await call(sim.url, 'POST', '/v1/payments/confirm', { body, idempotencyKey: 'kv' });
    expect(res.status).toBe(400);
    expect(res.json().code).toBe('INVALID_REQUEST');
    expect(sim.state.ledger.payments.size).toBe(0);
  });

  it('answers 400 INVALID_IDEMPOTENCY_KEY for an empty or over-300-character key', async () => {
    for (const key of ['', 'k'.repeat(301)]) {
      const res = await confirm(sim.url, 'pk_idem_len', { idempotencyKey: key });
      expect(res.status).toBe(400);
      expect(res.json().code).toBe('INVALID_IDEMPOTENCY_KEY');
    }
    const ok = await confirm(sim.url, 'pk_idem_len', { idempotencyKey: 'k'.repeat(300) });
    expect(ok.status).toBe(200);
  });

  it('unknown_status answers status READY while the ledger is DONE; unknown_code answers 400 SOMETHING_NEW and records nothing', async () => {
    const odd = await confirm(sim.url, 'sim_unknown_status_1');
    expect(odd.status).toBe(200);
    expect(odd.json().status).toBe('READY');
    expect(sim.state.ledgerView().payments['sim_unknown_status_1']).toMatchObject({ status: 'DONE', chargeCount: 1 });

    const code = await confirm(sim.url, 'sim_unknown_code_1', { idempotencyKey: 'ku' });
    expect(code.status).toBe(400);
    expect(code.json().code).toBe('SOMETHING_NEW');
    expect(sim.state.ledger.byPaymentKey('sim_unknown_code_1')).toBeUndefined();
    const again = await confirm(sim.url, 'sim_unknown_code_1', { idempotencyKey: 'ku' });
    expect(again.headers['idempotent-replayed']).toBeUndefined();
  });

  it('draws outcomes from the knobs with a seeded RNG: same seed, same outcomes', async () => {
    const outcomes = async (): Promise<number[]> => {
      const other = await startSimulator({ latencyMedianMs: 0, declineRate: 0.5, seed: 7 });
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 20; i++) statuses.push((await confirm(other.url, `pk_seed_${i}`)).status);
        return statuses;
      } finally {
        await other.close();
      }
    };
    const first = await outcomes();
    expect(first).toContain(200);
    expect(first).toContain(403);
    expect(await outcomes()).toEqual(first);
  });
});
