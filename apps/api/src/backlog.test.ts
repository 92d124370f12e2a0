/** The backlog ceiling: BACKLOG_MAX_SECONDS of work at the PG's rate, then 503 (never 429). */
import { afterAll, beforeAll, expect, it } from 'vitest';
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
  const [oldest] = await t.redis.zrange(t.store.keys.open, 0, 0);
  // What the worker's finalize does to the backlog, done by hand here.
  await t.redis.zrem(t.store.keys.open, oldest!);
  expect((await postPayment(t, { body: paymentBody() })).status).toBe(202);
  expect((await postPayment(t, { body: paymentBody() })).status).toBe(503);
});
