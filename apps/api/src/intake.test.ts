/** POST /v1/payments over real Redis: creation, the confirm job, idempotency, races, claims. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from './payment-request.ts';
import { get, keysUnder, paymentBody, postPayment, startTestApp, type TestApp } from './test-support.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

const paymentHashes = async (): Promise<string[]> =>
  (await keysUnder(t.redis, `${t.prefix}:pay:`)).filter((k) => !k.endsWith(':hist'));

describe('POST /v1/payments: happy path', () => {
  it('answers 202 with the QUEUED payment, stores it, and enqueues one confirm job', async () => {
    const body = paymentBody({ amount: 25_000, currency: 'KRW', metadata: { cart: 'c-17', note: 'gift' } });
    const before = Date.now();
    const res = await postPayment(t, { body, headers: { 'x-request-id': 'req-happy-1' } });

    expect(res.status).toBe(202);
    const p = res.json;
    expect(p.id).toMatch(/^pay_[0-9a-z]{9}[0-9a-f]{16}$/);
    expect(res.headers.get('location')).toBe(`/v1/payments/${p.id}`);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(res.text)));
    expect(res.headers.get('idempotent-replayed')).toBeNull();
    expect(res.headers.get('x-request-id')).toBe('req-happy-1');
    expect(Object.keys(p)).toEqual([
      'id', 'paymentKey', 'orderId', 'amount', 'currency', 'provider', 'metadata', 'status', 'attempts',
      'createdAt', 'updatedAt', 'finalizedAt', 'transactionKey', 'approvedAt', 'failure', 'balanceAmount', 'cancels', 'eta',
    ]);
    expect(p).toMatchObject({
      paymentKey: body.paymentKey,
      orderId: body.orderId,
      amount: 25_000,
      currency: 'KRW',
      metadata: { cart: 'c-17', note: 'gift' },
      status: 'QUEUED',
      attempts: 0,
      finalizedAt: null,
      transactionKey: null,
      approvedAt: null,
      failure: null,
    });
    expect(Date.parse(p.createdAt)).toBeGreaterThanOrEqual(before - 5);
    expect(p.updatedAt).toBe(p.createdAt);

    const rec = await t.store.get(p.id);
    expect(rec).toMatchObject({
      id: p.id, merchantId: 'm_a', paymentKey: body.paymentKey, orderId: body.orderId, amount: 25_000,
      currency: 'KRW', status: 'QUEUED', phase: 'queued', requestId: 'req-happy-1', metadata: { cart: 'c-17', note: 'gift' },
    });
    expect(await t.redis.get(t.store.keys.byPaymentKey(body.paymentKey as string))).toBe(p.id);
    expect(await t.redis.get(t.store.keys.byOrderId(body.orderId as string))).toBe(p.id);
    expect(await t.redis.zscore(t.store.keys.open, p.id)).not.toBeNull();

    // In its merchant's fair queue, for a worker to admit: no job and no outbox marker before that.
    expect(await t.redis.lrange(t.store.keys.fair('default').queue('m_a'), 0, -1)).toContain(p.id);
    expect(await t.store.get(p.id)).toMatchObject({ fqSeq: expect.any(Number) });
    expect(await t.queues.confirm.getJob(p.id)).toBeUndefined();
    expect(await t.redis.zcard(t.store.keys.outbox)).toBe(0);
  });

  it('GET returns the same resource the POST answered, by id and by orderId', async () => {
    const created = await postPayment(t, {});
    expect(created.status).toBe(202);
    const byId = await get(t, `/v1/payments/${created.json.id}`, t.keyA);
    expect(byId.status).toBe(200);
    // The same resource; only eta is estimated afresh at each read.
    expect({ ...byId.json, eta: null }).toEqual({ ...created.json, eta: null });
    expect(Object.keys(byId.json)).toEqual(Object.keys(created.json));
    expect(byId.json.eta).toEqual(expect.any(String));
    expect(byId.headers.get('cache-control')).toBe('no-store');
    const byOrder = await get(t, `/v1/payments?orderId=${created.json.orderId}`, t.keyA);
    expect(byOrder.status).toBe(200);
    expect({ ...byOrder.json, eta: null }).toEqual({ ...created.json, eta: null });
  });

  it('generates a request id when none (or an unsafe one) is given, and stores it', async () => {
    const res = await postPayment(t, { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(res.status).toBe(202);
    const rid = res.headers.get('x-request-id');
    expect(rid).toMatch(/^[0-9a-f-]{36}$/);
    expect((await t.store.get(res.json.id))?.requestId).toBe(rid);
  });
});

describe('idempotency', () => {
  it('replays the stored 202 byte for byte for the same key and body', async () => {
    const idem = `idem-${randomUUID()}`;
    const body = paymentBody({ metadata: { b: '2', a: '1' } });
    const first = await postPayment(t, { idem, body });
    expect(first.status).toBe(202);
    // Same request with fields in another order and the currency spelled out: the same request.
    const reordered = { metadata: { a: '1', b: '2' }, amount: body.amount, currency: 'KRW', orderId: body.orderId, paymentKey: body.paymentKey };
    const again = await postPayment(t, { idem, body: reordered });
    expect(again.status).toBe(202);
    expect(again.text).toBe(first.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(`/v1/payments/${first.json.id}`);
    expect(await paymentHashes()).toContain(`${t.prefix}:pay:${first.json.id}`);
    expect(await t.redis.zscore(t.store.keys.open, first.json.id)).not.toBeNull();
  });

  it('replays the first 202 byte for byte after the payment moved on (it is rendered again from the fields that never change)', async () => {
    const idem = `idem-${randomUUID()}`;
    const body = paymentBody({ metadata: { note: 'é ✓ "quoted" 😀', '10': 'x', a: '1' } });
    const first = await postPayment(t, { idem, body });
    expect(first.status).toBe(202);
    // The worker took it to APPROVED meanwhile: a replay still answers what was first sent.
    await t.redis.hset(t.store.keys.payment(first.json.id), 'status', 'APPROVED', 'phase', 'final', 'attempts', '1', 'updatedAt', String(Date.now() + 5_000), 'transactionKey', 'tx-1');
    const again = await postPayment(t, { idem, body });
    expect([again.status, again.headers.get('idempotent-replayed'), again.text]).toEqual([202, 'true', first.text]);
    expect(first.json).toMatchObject({ status: 'QUEUED', attempts: 0, eta: expect.any(String) });
  });

  it('refuses the same key with another body: 422 IDEMPOTENCY_KEY_REUSED, nothing written', async () => {
    const idem = `idem-${randomUUID()}`;
    const body = paymentBody();
    expect((await postPayment(t, { idem, body })).status).toBe(202);
    const before = await t.redis.zcard(t.store.keys.open);
    const other = paymentBody();
    const res = await postPayment(t, { idem, body: { ...body, amount: 99 } });
    expect(res.status).toBe(422);
    expect(res.json).toEqual({ code: 'IDEMPOTENCY_KEY_REUSED', message: expect.any(String) });
    const res2 = await postPayment(t, { idem, body: other });
    expect(res2.status).toBe(422);
    expect(await t.redis.zcard(t.store.keys.open)).toBe(before);
    expect(await t.redis.get(t.store.keys.byOrderId(other.orderId as string))).toBeNull();
  });

  it('keys are per merchant: B reusing A\'s key string creates its own payment', async () => {
    const idem = `shared-${randomUUID()}`;
    const a = await postPayment(t, { idem, key: t.keyA, body: paymentBody() });
    const b = await postPayment(t, { idem, key: t.keyB, body: paymentBody() });
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(b.headers.get('idempotent-replayed')).toBeNull();
    expect(b.json.id).not.toBe(a.json.id);
    expect((await t.store.get(b.json.id))?.merchantId).toBe('m_b');
  });

  it('50 concurrent identical requests create exactly one payment', async () => {
    const openBefore = await t.redis.zcard(t.store.keys.open);
    const hashesBefore = (await paymentHashes()).length;
    const idem = `race-${randomUUID()}`;
    const body = paymentBody();
    const answers = await Promise.all(Array.from({ length: 50 }, () => postPayment(t, { idem, body })));

    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(202));
    const ids = new Set(answers.map((a) => a.json.id));
    expect(ids.size).toBe(1);
    expect(new Set(answers.map((a) => a.text)).size).toBe(1);
    expect(answers.filter((a) => a.headers.get('idempotent-replayed') === 'true')).toHaveLength(49);
    expect(await t.redis.zcard(t.store.keys.open)).toBe(openBefore + 1);
    expect((await paymentHashes()).length).toBe(hashesBefore + 1);

    // Queued once.
    const [id] = [...ids];
    expect((await t.redis.lrange(t.store.keys.fair('default').queue('m_a'), 0, -1)).filter((x) => x === id)).toHaveLength(1);
  });
});

describe('global claims', () => {
  it('a paymentKey held by another merchant is 409 DUPLICATE_PAYMENT_KEY, and nothing is written', async () => {
    const first = paymentBody();
    expect((await postPayment(t, { key: t.keyA, body: first })).status).toBe(202);
    const second = paymentBody({ paymentKey: first.paymentKey });
    const idem = `dup-${randomUUID()}`;
    const res = await postPayment(t, { key: t.keyB, idem, body: second });
    expect(res.status).toBe(409);
    expect(res.json).toEqual({ code: 'DUPLICATE_PAYMENT_KEY', message: expect.any(String) });
    expect(res.text).not.toContain('m_a');
    expect(await t.redis.get(t.store.keys.byOrderId(second.orderId as string))).toBeNull();
    expect(await t.redis.exists(t.store.keys.idempotency('m_b', sha256Hex(idem)))).toBe(0);
    expect(await t.redis.get(t.store.keys.byPaymentKey(first.paymentKey as string))).not.toBeNull();
  });

  it('an orderId held by another payment is 409 DUPLICATE_ORDER_ID, and nothing is written', async () => {
    const first = paymentBody();
    const created = await postPayment(t, { body: first });
    expect(created.status).toBe(202);
    const open = await t.redis.zcard(t.store.keys.open);
    const second = paymentBody({ orderId: first.orderId });
    const res = await postPayment(t, { key: t.keyB, body: second });
    expect(res.status).toBe(409);
    expect(res.json).toEqual({ code: 'DUPLICATE_ORDER_ID', message: expect.any(String) });
    expect(await t.redis.get(t.store.keys.byPaymentKey(second.paymentKey as string))).toBeNull();
    expect(await t.redis.get(t.store.keys.byOrderId(first.orderId as string))).toBe(created.json.id);
    expect(await t.redis.zcard(t.store.keys.open)).toBe(open);
  });
});
