/**
 * Claims that are never used: a payment that ended FAILED before any confirm passed the phase
 * guard releases its orderId and paymentKey, so the merchant can pay the same order again; any
 * payment the PG may have seen keeps them. Driven through the API and the real transitions.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Transitions } from '@sluice/store';
import { get, paymentBody, postPayment, startTestApp, type TestApp } from './test-support.ts';

let t: TestApp;
/** Transitions whose queue age limit has already passed for every payment. */
let expiring: Transitions;
/** Transitions for payments that are sent. */
let sending: Transitions;
beforeAll(async () => {
  t = await startTestApp();
  const breaker = { consecutiveFailures: 1_000, failureRate: 1, minCalls: 1_000, windowMs: 10_000, openMs: 60_000, probeIntervalMs: 5_000, closeAfter: 2 };
  expiring = new Transitions(t.redis, t.store.keys, { breaker, maxQueueAgeMs: -1, retentionMs: 60_000 });
  sending = new Transitions(t.redis, t.store.keys, { breaker, maxQueueAgeMs: 3_600_000, retentionMs: 60_000 });
});
afterAll(async () => {
  await t.close();
});

const confirm = { call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' } as const;

async function accepted(body: Record<string, unknown>, idem = randomUUID()): Promise<string> {
  const res = await postPayment(t, { body, idem });
  expect(res.status, res.text).toBe(202);
  return res.json.id as string;
}

describe('claims of a payment the PG never saw are released', () => {
  it('expired in the queue (no confirm ever sent): the same order can be paid again, by any merchant', async () => {
    const body = paymentBody();
    const idem = randomUUID();
    const first = await accepted(body, idem);
    expect(await expiring.guard({ paymentId: first, ...confirm })).toEqual({ ok: false, reason: 'expired' });
    expect((await get(t, `/v1/payments/${first}`, t.keyA)).json).toMatchObject({ status: 'FAILED', attempts: 0, failure: { code: 'EXPIRED_IN_QUEUE' } });
    // Until another payment takes the order, its lookup still finds the failed one.
    expect((await get(t, `/v1/payments?orderId=${body.orderId}`, t.keyA)).json.id).toBe(first);

    // The first key still replays the first payment; a new key pays the order again.
    const replay = await postPayment(t, { body, idem });
    expect([replay.status, replay.json.id, replay.headers.get('idempotent-replayed')]).toEqual([202, first, 'true']);
    const second = await accepted(body);
    expect(second).not.toBe(first);
    expect((await get(t, `/v1/payments?orderId=${body.orderId}`, t.keyA)).json.id).toBe(second);
    expect(await t.redis.get(t.store.keys.byPaymentKey(body.paymentKey as string))).toBe(second);
    expect((await get(t, `/v1/payments/${first}`, t.keyA)).json.status).toBe('FAILED');

    // The second holds them now, as any live payment does.
    const third = await postPayment(t, { body: { ...body, paymentKey: `pk_${randomUUID()}` } });
    expect([third.status, third.json.code]).toEqual([409, 'DUPLICATE_ORDER_ID']);
  });

  it('the release is by the payment’s own mark: another merchant takes the order just as well', async () => {
    const body = paymentBody();
    const first = await accepted(body);
    await expiring.guard({ paymentId: first, ...confirm });
    const res = await postPayment(t, { body, key: t.keyB });
    expect(res.status, res.text).toBe(202);
  });
});

describe('claims of anything the PG may have seen stay', () => {
  const finals = [
    { name: 'FAILED after a confirm passed the guard (NOT_FOUND_PAYMENT_SESSION)', status: 'FAILED', failure: { code: 'NOT_FOUND_PAYMENT_SESSION', message: 'x' } },
    { name: 'DECLINED', status: 'DECLINED', failure: { code: 'REJECT_CARD_COMPANY', message: 'x' } },
    { name: 'CANCELED', status: 'CANCELED' },
    { name: 'APPROVED', status: 'APPROVED' },
  ] as const;

  it.each(finals)('$name: the orderId and the paymentKey stay taken', async (f) => {
    const body = paymentBody();
    const id = await accepted(body);
    expect((await sending.guard({ paymentId: id, ...confirm })).ok).toBe(true);
    const step = { do: 'finalize' as const, status: f.status, ...('failure' in f ? { failure: f.failure } : {}) };
    expect(await sending.apply({ paymentId: id, expected: 'confirming', step, event: { test: true }, settlesConfirm: true })).toBe('final');
    expect((await get(t, `/v1/payments/${id}`, t.keyA)).json).toMatchObject({ status: f.status, attempts: 1 });

    const sameOrder = await postPayment(t, { body: { ...body, paymentKey: `pk_${randomUUID()}` } });
    expect([sameOrder.status, sameOrder.json.code]).toEqual([409, 'DUPLICATE_ORDER_ID']);
    const sameKey = await postPayment(t, { body: { ...body, orderId: `ord_${randomUUID().slice(0, 20)}` } });
    expect([sameKey.status, sameKey.json.code]).toEqual([409, 'DUPLICATE_PAYMENT_KEY']);
    expect(await t.redis.hget(t.store.keys.payment(id), 'claimsReleased')).toBeNull();
  });
});
