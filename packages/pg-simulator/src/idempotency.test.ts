import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from './index.ts';
import { call, confirm, sleep, waitFor } from './test-client.ts';

describe('idempotency and repeats', () => {
  let sim: RunningSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ latencyMedianMs: 0 });
  });
  afterAll(() => sim.close());
  beforeEach(() => sim.state.reset());

  const chargeCount = (key: string): number | undefined => sim.state.ledgerView().payments[key]?.chargeCount;

  it('replays a stored answer byte for byte with Idempotent-Replayed, ignoring a different body', async () => {
    const first = await confirm(sim.url, 'pk_rep', { orderId: 'order_rep', idempotencyKey: 'k-rep' });
    expect(first.status).toBe(200);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    await sleep(5);
    const second = await confirm(sim.url, 'pk_other', { orderId: 'order_other', amount: 1, idempotencyKey: 'k-rep' });
    expect(second.status).toBe(200);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.text).toBe(first.text);
    expect(chargeCount('pk_rep')).toBe(1);
    expect(sim.state.ledger.byPaymentKey('pk_other')).toBeUndefined();
  });

  it('replays a decline as the first answer, not as the payment stands now', async () => {
    const first = await confirm(sim.url, 'pk_dec_rep', { idempotencyKey: 'k-dec', headers: { 'x-sim-scenario': 'decline' } });
    expect(first.status).toBe(403);
    const second = await confirm(sim.url, 'pk_dec_rep', { idempotencyKey: 'k-dec' });
    expect([second.status, second.text, second.headers['idempotent-replayed']]).toEqual([403, first.text, 'true']);
  });

  it('answers 409 IDEMPOTENT_REQUEST_PROCESSING while the first request is in flight, then replays', async () => {
    sim.state.setKnobs({ latencyMedianMs: 2_000, latencyP99Ms: 2_000 });
    const first = confirm(sim.url, 'pk_slow', { idempotencyKey: 'k-slow' });
    await waitFor(() => sim.state.ledger.byPaymentKey('pk_slow') !== undefined);
    const during = await confirm(sim.url, 'pk_slow', { idempotencyKey: 'k-slow' });
    expect(during.status).toBe(409);
    expect(during.json().code).toBe('IDEMPOTENT_REQUEST_PROCESSING');
    expect((await call(sim.url, 'GET', '/v1/payments/pk_slow')).json().status).toBe('IN_PROGRESS');
    expect((await first).status).toBe(200);
    const after = await confirm(sim.url, 'pk_slow', { idempotencyKey: 'k-slow' });
    expect([after.status, after.headers['idempotent-replayed']]).toEqual([200, 'true']);
    expect(chargeCount('pk_slow')).toBe(1);
    sim.state.setKnobs({ latencyMedianMs: 0, latencyP99Ms: 1500 });
  });

  it('processes a repeat after an ambiguous_nocommit 500 as new and charges exactly once', async () => {
    const first = await confirm(sim.url, 'pk_amb_no', { idempotencyKey: 'k-amb-no', headers: { 'x-sim-scenario': 'ambiguous_nocommit' } });
    expect(first.status).toBe(500);
    expect(['FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING', 'FAILED_INTERNAL_SYSTEM_PROCESSING']).toContain(first.json().code);
    expect(sim.state.ledger.byPaymentKey('pk_amb_no')).toBeUndefined();
    expect((await call(sim.url, 'GET', '/v1/payments/pk_amb_no')).status).toBe(404);

    const second = await confirm(sim.url, 'pk_amb_no', { idempotencyKey: 'k-amb-no' });
    expect(second.status).toBe(200);
    expect(second.headers['idempotent-replayed']).toBeUndefined();
    expect(sim.state.ledgerView().payments['pk_amb_no']).toMatchObject({ status: 'DONE', chargeCount: 1, confirmArrivals: 2, confirmKeys: 1 });
    expect(sim.state.ledger.transactions).toHaveLength(1);
    // The ledger counts the distinct keys a paymentKey's confirms came under.
    await confirm(sim.url, 'pk_amb_no', { idempotencyKey: 'k-amb-other' });
    expect(sim.state.ledgerView().payments['pk_amb_no']).toMatchObject({ chargeCount: 1, confirmArrivals: 3, confirmKeys: 2 });
  });

  it('answers a repeat after an ambiguous_commit 500 from the record: 200, no second charge', async () => {
    const first = await confirm(sim.url, 'pk_amb_yes', { idempotencyKey: 'k-amb-yes', headers: { 'x-sim-scenario': 'ambiguous_commit' } });
    expect(first.status).toBe(500);
    expect(chargeCount('pk_amb_yes')).toBe(1);
    const second = await confirm(sim.url, 'pk_amb_yes', { idempotencyKey: 'k-amb-yes' });
    expect(second.status).toBe(200);
    expect(second.json().status).toBe('DONE');
    expect(chargeCount('pk_amb_yes')).toBe(1);
    expect(sim.state.ledger.transactions).toHaveLength(1);
  });

  it('keeps the paymentKey marker for retries: sim_provider_nocommit_ fails with 502 every time and never charges', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await confirm(sim.url, 'sim_provider_nocommit_1', { idempotencyKey: 'k-prov' });
      expect([res.status, res.json().code]).toEqual([502, 'PROVIDER_ERROR']);
    }
    expect(sim.state.ledgerView().payments['sim_provider_nocommit_1']).toMatchObject({ status: 'NONE', chargeCount: 0, confirmArrivals: 3 });
    const committed = await confirm(sim.url, 'sim_provider_commit_1', { idempotencyKey: 'k-prov-c' });
    expect(committed.status).toBe(502);
    expect(chargeCount('sim_provider_commit_1')).toBe(1);
  });

  it('answers ALREADY_PROCESSED_PAYMENT to another key, during and after the approval, and stores it', async () => {
    sim.state.setKnobs({ latencyMedianMs: 2_000, latencyP99Ms: 2_000 });
    const first = confirm(sim.url, 'pk_dup', { idempotencyKey: 'k-a' });
    await waitFor(() => sim.state.ledger.byPaymentKey('pk_dup') !== undefined);
    const during = await confirm(sim.url, 'pk_dup', { idempotencyKey: 'k-b' });
    expect([during.status, during.json().code]).toEqual([400, 'ALREADY_PROCESSED_PAYMENT']);
    expect((await first).status).toBe(200);
    sim.state.setKnobs({ latencyMedianMs: 0, latencyP99Ms: 1500 });
    const after = await confirm(sim.url, 'pk_dup', { idempotencyKey: 'k-c' });
    expect([after.status, after.json().code]).toEqual([400, 'ALREADY_PROCESSED_PAYMENT']);
    const replay = await confirm(sim.url, 'pk_dup', { idempotencyKey: 'k-c' });
    expect([replay.text, replay.headers['idempotent-replayed']]).toEqual([after.text, 'true']);
    expect(chargeCount('pk_dup')).toBe(1);
  });

  it('answers DUPLICATED_ORDER_ID when another paymentKey holds the orderId', async () => {
    expect((await confirm(sim.url, 'pk_ord_1', { orderId: 'order_shared', idempotencyKey: 'k-o1' })).status).toBe(200);
    const res = await confirm(sim.url, 'pk_ord_2', { orderId: 'order_shared', idempotencyKey: 'k-o2' });
    expect([res.status, res.json().code]).toEqual([400, 'DUPLICATED_ORDER_ID']);
    expect(sim.state.ledger.byPaymentKey('pk_ord_2')).toBeUndefined();
    expect(sim.state.ledger.byOrderId('order_shared')?.paymentKey).toBe('pk_ord_1');
  });

  it('does not compare bodies and does not share keys across paths (confirm vs cancel)', async () => {
    expect((await confirm(sim.url, 'pk_path', { idempotencyKey: 'same' })).status).toBe(200);
    const cancel = await call(sim.url, 'POST', '/v1/payments/pk_path/cancel', { body: { cancelReason: 'x' }, idempotencyKey: 'same' });
    expect(cancel.status).toBe(200);
    expect(cancel.headers['idempotent-replayed']).toBeUndefined();
    expect(cancel.json().status).toBe('CANCELED');
  });
});
