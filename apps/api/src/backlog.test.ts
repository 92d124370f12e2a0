/**
 * The backlog ceiling: BACKLOG_MAX_SECONDS of work at the PG's rate, then 503 (never 429); and
 * the same ceiling for each merchant's payments waiting at its share of the rate.
 */
import { FairShare } from '@sluice/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentBody, postPayment, startTestApp, type TestApp } from './test-support.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ BACKLOG_MAX_SECONDS: 1, PG_RATE_LIMIT: 2 });
});
afterAll(async () => {
  await t.close();
});

it('admits two payments, then answers 503 BACKLOG_FULL with Retry-After, and replays still work', async () => {
  const first = await postPayment(t, { idem: 'first', body: paymentBody() });
  const second = await postPayment(t, { body: paymentBody() });
  expect([first.status, second.status]).toEqual([202, 202]);

  const third = paymentBody();
  const full = await postPayment(t, { body: third });
  expect(full.status).toBe(503);
  expect(full.json).toEqual({ code: 'BACKLOG_FULL', message: expect.any(String) });
  expect(Number(full.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(await t.redis.zcard(t.store.keys.open)).toBe(2);
  expect(await t.redis.get(t.store.keys.byOrderId(third.orderId as string))).toBeNull();

  // A merchant retrying a payment it already has is answered from the idempotency key, full or not.
  const replay = await postPayment(t, { idem: 'first', body: {
    paymentKey: first.json.paymentKey, orderId: first.json.orderId, amount: first.json.amount,
  } });
  expect(replay.status).toBe(202);
  expect(replay.text).toBe(first.text);

  const burst = await Promise.all(Array.from({ length: 10 }, () => postPayment(t, { body: paymentBody() })));
  expect(burst.map((r) => r.status)).toEqual(Array(10).fill(503));
  expect(burst.some((r) => r.status === 429)).toBe(false);
});

it('admits again once the backlog drains below the ceiling', async () => {
  // What a worker does to the oldest payment, by hand here: admits it from its merchant's queue,
  // and (its confirm answered) finalize takes it out of the backlog.
  const [oldest] = await t.redis.zrange(t.store.keys.open, 0, 0);
  expect(await new FairShare(t.redis, t.store.keys).admit(1, 1, 60_000)).toEqual([oldest]);
  await t.redis.zrem(t.store.keys.open, oldest!);
  expect((await postPayment(t, { body: paymentBody() })).status).toBe(202);
  expect((await postPayment(t, { body: paymentBody() })).status).toBe(503);
});

describe("a merchant's own ceiling", () => {
  let u: TestApp;
  beforeAll(async () => {
    // 4 send slots of backlog (2 s at 2/s), for all, and for each merchant at its share.
    u = await startTestApp({ BACKLOG_MAX_SECONDS: 2, PG_RATE_LIMIT: 2 });
  });
  afterAll(async () => {
    await u.close();
  });

  it('answers 503 MERCHANT_BACKLOG_FULL to the merchant past it, and still takes the others', async () => {
    // m_a alone: two payments, 1 and 2 slots away.
    for (let i = 0; i < 2; i++) expect((await postPayment(u, { body: paymentBody() })).status).toBe(202);
    // m_b joins: both share the rate now, so m_a's third would be 3 turns at half the rate, 6 slots.
    expect((await postPayment(u, { key: u.keyB, body: paymentBody() })).status).toBe(202);
    const body = paymentBody();
    const full = await postPayment(u, { body });
    expect(full.status).toBe(503);
    expect(full.json).toEqual({ code: 'MERCHANT_BACKLOG_FULL', message: expect.any(String) });
    // 2 slots over the ceiling at 2/s: 1 s.
    expect(full.headers.get('retry-after')).toBe('1');
    expect(await u.redis.get(u.store.keys.byOrderId(body.orderId as string))).toBeNull();
    // Only 3 of the 4 slots are taken: m_b's second (4 slots away) is accepted.
    expect(await u.redis.zcard(u.store.keys.open)).toBe(3);
    expect((await postPayment(u, { key: u.keyB, body: paymentBody() })).status).toBe(202);
  });
});
