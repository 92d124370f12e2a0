/**
 * `POST /v1/payments/{id}/cancel` over HTTP: every answer of the route, validated against the
 * documented schemas, on the real Redis (the PG's side is the worker's: apps/worker refunds.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Transitions } from '@sluice/store';
import { errorBodySchema, paymentResourceSchema } from './api-schemas.ts';
import { get, paymentBody, post, postPayment, startTestApp, type TestApp } from './test-support.ts';

let t: TestApp;
let transitions: Transitions;
beforeAll(async () => {
  t = await startTestApp();
  const breaker = { consecutiveFailures: 1_000, failureRate: 1, minCalls: 1_000, windowMs: 10_000, openMs: 60_000, probeIntervalMs: 5_000, closeAfter: 2 };
  transitions = new Transitions(t.redis, t.store.keys, { breaker, maxQueueAgeMs: 3_600_000, retentionMs: 600_000 });
});
afterAll(async () => {
  await t.close();
});

async function accepted(amount = 10_000): Promise<string> {
  const res = await postPayment(t, { body: paymentBody({ amount }) });
  expect(res.status).toBe(202);
  return res.json.id as string;
}
async function final(status: 'APPROVED' | 'DECLINED', amount = 10_000): Promise<string> {
  const id = await accepted(amount);
  await transitions.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' });
  await transitions.apply({ paymentId: id, expected: 'confirming', step: { do: 'finalize', status }, event: {}, settlesConfirm: true });
  return id;
}
const cancel = (id: string, body: unknown, idem?: string, key?: string) => post(t, `/v1/payments/${id}/cancel`, body, key, idem);
const code = (a: { json: unknown }) => errorBodySchema().parse(a.json).code;

describe('POST /v1/payments/{id}/cancel', () => {
  it('QUEUED: 202, CANCELED at once with its cancel SUCCEEDED; the order can be paid again', async () => {
    const body = paymentBody({ amount: 8_000 });
    const first = await postPayment(t, { body });
    const res = await cancel(first.json.id, { reason: 'customer left' });
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toBe(`/v1/payments/${first.json.id}`);
    const p = paymentResourceSchema.parse(res.json);
    expect(p).toMatchObject({ status: 'CANCELED', balanceAmount: 0, failure: { code: 'CANCELED_BY_MERCHANT' } });
    expect(p.cancels).toMatchObject([{ amount: 8_000, reason: 'customer left', status: 'SUCCEEDED', failure: null }]);
    expect(p.cancels[0]!.completedAt).not.toBeNull();
    // Its claims are released: the same order and paymentKey make a new payment.
    expect((await postPayment(t, { body })).status).toBe(202);
  });

  it('APPROVED: reserves the amount; the balance stays until the PG has done it; past the balance 422', async () => {
    const id = await final('APPROVED');
    const a = await cancel(id, { reason: 'one item back', amount: 3_000 });
    expect(a.status).toBe(202);
    expect(paymentResourceSchema.parse(a.json)).toMatchObject({ status: 'APPROVED', balanceAmount: 10_000, cancels: [{ amount: 3_000, status: 'PENDING', completedAt: null }] });
    const b = await cancel(id, { reason: 'the rest' });
    expect(b.json.cancels[1]).toMatchObject({ amount: 7_000, status: 'PENDING' });
    const c = await cancel(id, { reason: 'one more', amount: 1 });
    expect([c.status, code(c)]).toEqual([422, 'CANCEL_AMOUNT_EXCEEDS_BALANCE']);
    expect((await get(t, `/v1/payments/${id}`, t.keyA)).json.cancels).toHaveLength(2);
  });

  it('the same key and body replays the first answer; another body under it is 422', async () => {
    const id = await final('APPROVED');
    const idem = randomUUID();
    const first = await cancel(id, { reason: 'r', amount: 1_000 }, idem);
    const again = await cancel(id, { reason: 'r', amount: 1_000 }, idem);
    expect([again.status, again.headers.get('idempotent-replayed'), again.text]).toEqual([202, 'true', first.text]);
    const other = await cancel(id, { reason: 'r', amount: 2_000 }, idem);
    expect([other.status, code(other)]).toEqual([422, 'IDEMPOTENCY_KEY_REUSED']);
    expect((await get(t, `/v1/payments/${id}`, t.keyA)).json.cancels).toHaveLength(1);
  });

  it('PROCESSING: a part is 409 NOT_CANCELABLE_YET; the whole is accepted as a void', async () => {
    const id = await accepted();
    await transitions.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' });
    const part = await cancel(id, { reason: 'r', amount: 10 });
    expect([part.status, code(part)]).toEqual([409, 'NOT_CANCELABLE_YET']);
    const whole = await cancel(id, { reason: 'r' });
    expect(whole.status).toBe(202);
    expect(whole.json).toMatchObject({ status: 'PROCESSING', cancels: [{ amount: 10_000, status: 'PENDING' }] });
    expect(await t.redis.hget(t.store.keys.payment(id), 'phase')).toBe('canceling');
  });

  it('DECLINED: 409 NOT_CANCELABLE; an unknown or another merchant\'s payment: 404 alike', async () => {
    const declined = await final('DECLINED');
    const d = await cancel(declined, { reason: 'r' });
    expect([d.status, code(d)]).toEqual([409, 'NOT_CANCELABLE']);
    const mine = await final('APPROVED');
    const theirs = await cancel(mine, { reason: 'r' }, undefined, t.keyB);
    const none = await cancel('pay_0mwtg0rp12c8a1204a9db35e3', { reason: 'r' });
    expect([theirs.status, none.status]).toEqual([404, 404]);
    expect(theirs.json).toEqual(none.json);
  });

  it('refuses a bad body with 400 and changes nothing', async () => {
    const id = await final('APPROVED');
    for (const body of [{}, { reason: '' }, { reason: 'x'.repeat(201) }, { reason: '😀'.repeat(101) }, { reason: 'r', amount: 0 }, { reason: 'r', amount: 1.5 }, { reason: 'r', extra: 1 }]) {
      const res = await cancel(id, body);
      expect([res.status, code(res)], JSON.stringify(body)).toEqual([400, 'INVALID_REQUEST']);
    }
    const pan = await cancel(id, { reason: 'card 4111 1111 1111 1111' });
    expect([pan.status, code(pan)]).toEqual([400, 'CARD_DATA_NOT_ALLOWED']);
    const noKey = await fetch(`${t.url}/v1/payments/${id}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keyA}` }, body: '{"reason":"r"}' });
    expect(noKey.status).toBe(400);
    expect((await get(t, `/v1/payments/${id}`, t.keyA)).json.cancels).toEqual([]);
  });

  it('the dashboard counts the cancels asked for, done and pending, and the webhook deliveries', async () => {
    const auth = `Basic ${Buffer.from('ops:ops-password-1').toString('base64')}`;
    const res = await get(t, '/dashboard/data', undefined, { authorization: auth });
    expect(res.status).toBe(200);
    // This file so far: 1 queued cancel done at once, 2 + 1 pending on approved payments, 1 void pending.
    expect(res.json.totals.refunds).toEqual({ requested: 5, succeeded: 1, failed: 0, amount: 0 });
    // And the webhook deliveries, as the deliverer counts them.
    await t.redis.hset(t.store.keys.counters, 'webhook:delivered', 7, 'webhook:failedTries', 3, 'webhook:gaveUp', 1, 'webhook:disabled', 2);
    const after = await get(t, '/dashboard/data', undefined, { authorization: auth });
    expect(after.json.totals.webhooks).toEqual({ delivered: 7, failedTries: 3, gaveUp: 1, disabled: 2 });
  });
});
