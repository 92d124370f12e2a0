/**
 * `GET /v1/payments/:id?wait=N` over real Redis, with payments made final by the worker's own
 * apply-step script (which publishes them), and `eta` while QUEUED.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Transitions } from '@sluice/store';
import { paymentResourceSchema } from './api-schemas.ts';
import { get, paymentBody, postPayment, startTestApp, type TestApp } from './test-support.ts';

let t: TestApp;
let transitions: Transitions;
beforeAll(async () => {
  t = await startTestApp();
  transitions = new Transitions(t.redis, t.store.keys, {
    breaker: { consecutiveFailures: 20, failureRate: 0.5, minCalls: 40, windowMs: 10_000, openMs: 5_000, probeIntervalMs: 1_000, closeAfter: 2 },
    maxQueueAgeMs: 60_000,
    retentionMs: 60_000,
  });
});
afterAll(async () => {
  await t.close();
});

/** What the worker does when the PG declines: the apply-step script, which PUBLISHes the id. */
const decline = (id: string) =>
  transitions.apply({ paymentId: id, expected: 'queued', step: { do: 'finalize', status: 'DECLINED', failure: { code: 'REJECT_CARD_COMPANY', message: 'rejected' } }, event: { test: true } });

async function newPayment(key = t.keyA): Promise<{ id: string; orderId: string }> {
  const res = await postPayment(t, { key, body: paymentBody() });
  expect(res.status).toBe(202);
  return res.json;
}

async function timed<T>(p: Promise<T>): Promise<[T, number]> {
  const started = Date.now();
  const v = await p;
  return [v, Date.now() - started];
}

const until = async (cond: () => boolean, ms = 2_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
};

describe('long poll', () => {
  it('answers within about a second once the payment becomes final, not after N', async () => {
    const { id } = await newPayment();
    const waiting = timed(get(t, `/v1/payments/${id}?wait=20`, t.keyA));
    await until(() => t.waiters.size === 1);
    expect(t.waiters.size).toBe(1);
    expect(await decline(id)).toBe('final');
    const [res, ms] = await waiting;
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id, status: 'DECLINED', failure: { code: 'REJECT_CARD_COMPANY' }, eta: null });
    expect(paymentResourceSchema.safeParse(res.json).success).toBe(true);
    // Far below the 20 s asked for (bounds in these tests are loose: a loaded machine is slow).
    expect(ms).toBeLessThan(5_000);
    expect(t.waiters.size).toBe(0);
  });

  it('answers the state as it is when the time runs out', async () => {
    const { id } = await newPayment();
    const [res, ms] = await timed(get(t, `/v1/payments/${id}?wait=1`, t.keyA));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id, status: 'QUEUED', finalizedAt: null });
    expect(ms).toBeGreaterThanOrEqual(950);
    expect(ms).toBeLessThan(5_000);
    expect(t.waiters.size).toBe(0);
  });

  it('answers a final payment at once, and wait=0 like no wait', async () => {
    const { id } = await newPayment();
    await decline(id);
    const [res, ms] = await timed(get(t, `/v1/payments/${id}?wait=30`, t.keyA));
    expect(res.json.status).toBe('DECLINED');
    expect(ms).toBeLessThan(5_000);
    const { id: queued } = await newPayment();
    const [res0, ms0] = await timed(get(t, `/v1/payments/${queued}?wait=0`, t.keyA));
    expect(res0.json.status).toBe('QUEUED');
    expect(ms0).toBeLessThan(5_000);
  });

  it('reads again once subscribed, so a final state that was not published in time is not missed', async () => {
    const { id } = await newPayment();
    // Final without a message (as if it was published before this process subscribed): only
    // the read after the subscription can see it.
    await t.redis.hset(t.store.keys.payment(id), 'phase', 'final', 'status', 'FAILED', 'failureCode', 'X', 'failureMessage', 'x', 'finalizedAt', Date.now());
    await t.redis.zrem(t.store.keys.open, id);
    const [res, ms] = await timed(get(t, `/v1/payments/${id}?wait=20`, t.keyA));
    expect(res.json.status).toBe('FAILED');
    expect(ms).toBeLessThan(5_000);
  });

  it.each(['abc', '-1', '31', '1.5', '', '1e1', ' 5', '100'])('wait=%j is 400 INVALID_REQUEST', async (w) => {
    const { id } = await newPayment();
    const res = await get(t, `/v1/payments/${id}?wait=${encodeURIComponent(w)}`, t.keyA);
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: 'INVALID_REQUEST', details: [{ path: 'query.wait' }] });
  });

  it('a repeated wait parameter is 400', async () => {
    const { id } = await newPayment();
    const res = await get(t, `/v1/payments/${id}?wait=1&wait=2`, t.keyA);
    expect(res.status).toBe(400);
  });

  it("BOLA still applies: another merchant's id is 404 at once, like an unknown one, and nobody waits", async () => {
    const { id } = await newPayment(t.keyB);
    const [asA, ms] = await timed(get(t, `/v1/payments/${id}?wait=10`, t.keyA));
    const unknown = await get(t, `/v1/payments/pay_000000000ffffffffffffffff?wait=10`, t.keyA);
    expect(asA.status).toBe(404);
    expect(asA.text).toBe(unknown.text);
    expect(ms).toBeLessThan(5_000);
    expect(t.waiters.size).toBe(0);
    expect((await get(t, `/v1/payments/${id}?wait=10`)).status).toBe(401);
  });

  it('forgets a waiter whose client went away', async () => {
    const { id } = await newPayment();
    const ctrl = new AbortController();
    const req = fetch(`${t.url}/v1/payments/${id}?wait=20`, { headers: { authorization: `Bearer ${t.keyA}` }, signal: ctrl.signal }).catch((e: unknown) => e);
    await until(() => t.waiters.size === 1);
    expect(t.waiters.size).toBe(1);
    ctrl.abort();
    await req;
    await until(() => t.waiters.size === 0);
    expect(t.waiters.size).toBe(0);
  });

  it('uses one subscriber connection for many waiters', async () => {
    const ids = await Promise.all(Array.from({ length: 5 }, () => newPayment()));
    const waiting = Promise.all(ids.map(({ id }) => get(t, `/v1/payments/${id}?wait=20`, t.keyA)));
    await until(() => t.waiters.size === 5);
    // The channel is this app's own (its prefix): every subscriber on it is this process's.
    const [, subscribers] = (await t.redis.pubsub('NUMSUB', t.store.keys.finalChannel)) as [string, number];
    expect(subscribers).toBe(1);
    for (const { id } of ids) await decline(id);
    const answers = await waiting;
    expect(answers.map((a) => a.json.status)).toEqual(Array(5).fill('DECLINED'));
    expect(t.waiters.size).toBe(0);
  });
});

describe('waiter cap and shutdown', () => {
  it('answers 503 TOO_MANY_WAITERS with Retry-After past the cap, and answers waiters at shutdown', async () => {
    const small = await startTestApp({}, { maxWaiters: 1 });
    try {
      const a = (await postPayment(small, { body: paymentBody() })).json.id as string;
      const b = (await postPayment(small, { body: paymentBody() })).json.id as string;
      const first = timed(get(small, `/v1/payments/${a}?wait=20`, small.keyA));
      await until(() => small.waiters.size === 1);
      const second = await get(small, `/v1/payments/${b}?wait=20`, small.keyA);
      expect(second.status).toBe(503);
      expect(second.json).toEqual({ code: 'TOO_MANY_WAITERS', message: expect.any(String) });
      expect(second.headers.get('retry-after')).toBe('1');
      // Without wait, the same read is answered.
      expect((await get(small, `/v1/payments/${b}`, small.keyA)).status).toBe(200);

      await small.waiters.close();
      const [res, ms] = await first;
      expect(res.json).toMatchObject({ id: a, status: 'QUEUED' });
      expect(ms).toBeLessThan(5_000);
      expect(small.waiters.subscriberOpen).toBe(false);
    } finally {
      await small.close();
    }
  });
});

describe('eta', () => {
  it("is the wait for the merchant's turns at the PG rate while QUEUED, in the 202 and in reads", async () => {
    const rate = t.config.PG_RATE_WINDOW_MS / t.config.PG_RATE_LIMIT;
    const fair = t.store.keys.fair('default');
    // The payments m_a has waiting, and the merchants sharing the rate with it (weight 1 each).
    const queued = await t.redis.llen(fair.queue('m_a'));
    const merchants = new Set([...(await t.redis.lrange(fair.ring, 0, -1)), 'm_a']).size;
    const created = await postPayment(t, { body: paymentBody() });
    const p = created.json;
    // The 202's eta: created + (m_a's payments ahead + 1) turns × merchants sharing × ms per PG
    // call, filled in by the script.
    const slots = (queued + 1) * merchants;
    expect(Date.parse(p.eta)).toBe(Math.floor(Date.parse(p.createdAt) + slots * rate));
    const before = Date.now();
    const read = await get(t, `/v1/payments/${p.id}`, t.keyA);
    const eta = Date.parse(read.json.eta);
    expect(eta).toBeGreaterThanOrEqual(Math.floor(before + slots * rate));
    expect(eta).toBeLessThanOrEqual(Math.floor(Date.now() + slots * rate));

    await decline(p.id);
    expect((await get(t, `/v1/payments/${p.id}`, t.keyA)).json.eta).toBeNull();
  });
});
