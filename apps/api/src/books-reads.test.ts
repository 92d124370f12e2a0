/**
 * Reads once Redis has forgotten a payment: the books answer `GET /v1/payments/{id}`, the orderId
 * lookup and an idempotent replay with the same bytes Redis gave; the list pages with a cursor and
 * the daily summary counts, per merchant.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '@sluice/books/testing';
import { RefundStore, Transitions } from '@sluice/store';
import { drainToBooks, get, paymentBody, post, postPayment, startTestApp, type TestApp } from './test-support.ts';

const db = useTestDatabase();
let t: TestApp;
let transitions: Transitions;
beforeAll(async () => {
  t = await startTestApp({}, { databaseUrl: db.url });
  const breaker = { consecutiveFailures: 1_000, failureRate: 1, minCalls: 1_000, windowMs: 10_000, openMs: 60_000, probeIntervalMs: 5_000, closeAfter: 2 };
  transitions = new Transitions(t.redis, t.store.keys, { breaker, maxQueueAgeMs: 3_600_000, retentionMs: 600_000 });
});
afterAll(async () => {
  await t.close();
});

/** Accepted, sent and made final as the worker would. */
async function finalPayment(status: 'APPROVED' | 'DECLINED', key = t.keyA, over: Record<string, unknown> = {}): Promise<{ id: string; idem: string; body: Record<string, unknown>; text: string }> {
  const body = paymentBody(over);
  const idem = randomUUID();
  const res = await postPayment(t, { body, idem, key });
  expect(res.status).toBe(202);
  const id = res.json.id as string;
  expect((await transitions.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' })).ok).toBe(true);
  await transitions.apply({ paymentId: id, expected: 'confirming', step: { do: 'finalize', status, pg: { transactionKey: `tx_${id}`, approvedAt: '2026-12-06T10:00:00+09:00' } }, event: { test: true }, settlesConfirm: true });
  return { id, idem, body, text: res.text };
}

describe('after Redis forgets a payment', () => {
  it('answers by id, by orderId and to a replay from the books, exactly as it did from Redis', async () => {
    const p = await finalPayment('APPROVED');
    const hot = await get(t, `/v1/payments/${p.id}`, t.keyA);
    const hotByOrder = await get(t, `/v1/payments?orderId=${p.body.orderId}`, t.keyA);
    await drainToBooks(t, db.url, 200);
    await new Promise((r) => setTimeout(r, 400));
    expect(await t.redis.exists(t.store.keys.payment(p.id))).toBe(0);

    const cold = await get(t, `/v1/payments/${p.id}`, t.keyA);
    expect(cold.status).toBe(200);
    expect(cold.text).toBe(hot.text);
    expect((await get(t, `/v1/payments?orderId=${p.body.orderId}`, t.keyA)).text).toBe(hotByOrder.text);
    // Another merchant still sees nothing.
    expect((await get(t, `/v1/payments/${p.id}`, t.keyB)).status).toBe(404);
    // The replay's body came from the books, byte for byte the first 202.
    const replay = await postPayment(t, { body: p.body, idem: p.idem });
    expect([replay.status, replay.headers.get('idempotent-replayed'), replay.text]).toEqual([202, 'true', p.text]);
    // Another body under the key is still refused: the fingerprint stayed in Redis.
    expect((await postPayment(t, { body: { ...p.body, amount: 1 }, idem: p.idem })).status).toBe(422);
  });

  it('lists a merchant’s payments newest first with a cursor, and sums its days', async () => {
    const key = t.keyB;
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await finalPayment(i < 3 ? 'APPROVED' : 'DECLINED', key, { amount: 1_000 * (i + 1) }));
    await drainToBooks(t, db.url, 60_000);
    const first = await get(t, '/v1/payments?limit=2', key);
    expect(first.status).toBe(200);
    expect(first.json.data.map((p: { id: string }) => p.id)).toEqual([made[4]!.id, made[3]!.id]);
    expect(first.json.hasMore).toBe(true);
    const second = await get(t, `/v1/payments?limit=2&startingAfter=${first.json.nextStartingAfter}`, key);
    expect(second.json.data.map((p: { id: string }) => p.id)).toEqual([made[2]!.id, made[1]!.id]);
    const declined = await get(t, '/v1/payments?status=DECLINED', key);
    expect(declined.json.data.map((p: { id: string }) => p.id)).toEqual([made[4]!.id, made[3]!.id]);
    // The books render a payment as Redis does.
    expect(first.json.data[0]).toEqual((await get(t, `/v1/payments/${made[4]!.id}`, key)).json);

    const today = new Date().toISOString().slice(0, 10);
    const summary = await get(t, `/v1/summary/daily?from=${today}&to=${today}`, key);
    expect(summary.json).toEqual({ currency: 'KRW', days: [{ day: today, approved: { count: 3, amount: 6_000 }, declined: { count: 2, amount: 9_000 }, failed: { count: 0, amount: 0 }, canceled: { count: 0, amount: 0 }, open: { count: 0, amount: 0 }, refunded: { count: 0, amount: 0 } }] });
    const csv = await get(t, `/v1/summary/daily?from=${today}&to=${today}&format=csv`, key);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(csv.text).toBe(`day,approved_count,approved_amount,declined_count,declined_amount,failed_count,failed_amount,canceled_count,canceled_amount,open_count,open_amount,refunded_count,refunded_amount\n${today},3,6000,2,9000,0,0,0,0,0,0,0,0\n`);
  });

  it('counts refunds done on the day they completed, and keeps each cancel in the books', async () => {
    const key = t.keyA;
    const refunds = new RefundStore(t.redis, { prefix: t.store.keys.prefix, retentionMs: 600_000 });
    const p = await finalPayment('APPROVED', key, { amount: 10_000 });
    const asked = await post(t, `/v1/payments/${p.id}/cancel`, { reason: 'one item back', amount: 4_000 }, key);
    expect(asked.status).toBe(202);
    const c = asked.json.cancels[0] as { id: string };
    // The refunder's two steps, without a PG: sent, then done.
    expect((await refunds.guard({ paymentId: p.id, cancelId: c.id, op: 'send' })).ok).toBe(true);
    expect(await refunds.settle(p.id, c.id, { do: 'succeed', transactionKey: 'tx-refund-1' }, {})).toBe(true);
    await drainToBooks(t, db.url, 60_000);
    const today = new Date().toISOString().slice(0, 10);
    const day = (await get(t, `/v1/summary/daily?from=${today}&to=${today}`, key)).json.days[0];
    expect(day.refunded).toEqual({ count: 1, amount: 4_000 });
    const { rows } = await db.pool.query('SELECT payment_id, amount, status, pg_transaction_key FROM payment_cancels WHERE cancel_id = $1', [c.id]);
    expect(rows).toEqual([{ payment_id: p.id, amount: '4000', status: 'SUCCEEDED', pg_transaction_key: 'tx-refund-1' }]);
    // The payment as the books hold it shows the cancel and the balance, as Redis did.
    const read = await get(t, `/v1/payments/${p.id}`, key);
    expect(read.json).toMatchObject({ status: 'APPROVED', balanceAmount: 6_000, cancels: [{ id: c.id, amount: 4_000, status: 'SUCCEEDED' }] });
  });

  it('refuses malformed list and summary queries with a 400', async () => {
    for (const q of ['limit=0', 'limit=101', 'limit=x', 'status=NOPE', 'createdFrom=yesterday', 'startingAfter=x', 'bogus=1', 'limit=1&limit=2']) {
      expect((await get(t, `/v1/payments?${q}`, t.keyA)).status, q).toBe(400);
    }
    for (const q of ['', 'from=2026-01-01', 'from=2026-02-01&to=2026-01-01', 'from=2025-01-01&to=2026-12-31', 'from=2026-13-01&to=2026-13-02', 'from=2026-01-01&to=2026-01-02&format=xml']) {
      expect((await get(t, `/v1/summary/daily?${q}`, t.keyA)).status, q).toBe(400);
    }
  });

  it('an archived payment that released its claims leaves the order payable again', async () => {
    const expiring = new Transitions(t.redis, t.store.keys, {
      breaker: { consecutiveFailures: 1_000, failureRate: 1, minCalls: 1_000, windowMs: 10_000, openMs: 60_000, probeIntervalMs: 5_000, closeAfter: 2 },
      maxQueueAgeMs: -1, retentionMs: 600_000,
    });
    const body = paymentBody();
    const res = await postPayment(t, { body });
    const id = res.json.id as string;
    expect(await expiring.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' })).toEqual({ ok: false, reason: 'expired' });
    await drainToBooks(t, db.url, 60_000);
    // The mark that releases them expires with the payment: the claims went with the archive.
    expect(await t.redis.exists(t.store.keys.byOrderId(body.orderId as string), t.store.keys.byPaymentKey(body.paymentKey as string))).toBe(0);
    expect((await postPayment(t, { body })).status).toBe(202);
  });
});
