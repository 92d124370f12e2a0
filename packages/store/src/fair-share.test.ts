/**
 * The fair share between merchants over real Redis: intake's queues (create-payment.lua), the
 * admission by turns (admit.lua) and the guard's part (guard.lua).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FairShare } from './fair-share.ts';
import { makeKeys } from './keys.ts';
import { PaymentStore, type NewPayment } from './payments.ts';
import { newPaymentId } from './record.ts';
import { connectRedis, type Redis } from './redis.ts';
import { Transitions } from './transitions.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
let redis: Redis;
let prefix: string;
let store: PaymentStore;
let fair: FairShare;

beforeAll(() => {
  redis = connectRedis(REDIS_URL);
});
beforeEach(() => {
  prefix = `test-${randomUUID()}`;
  store = new PaymentStore(redis, { prefix, idempotencyTtlMs: 60_000, retentionMs: 60_000 });
  fair = new FairShare(redis, makeKeys(prefix));
});
afterEach(async () => {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1_000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
});
afterAll(async () => {
  await redis.quit();
});

const RATE = { windowMs: 1_000, limit: 500 };
let n = 0;
/** Creates a payment for `merchantId` and returns its id (or the refusal's kind). */
async function pay(merchantId: string, weight = 1, ceiling = 1_000_000): Promise<string> {
  n += 1;
  const p: NewPayment = {
    id: newPaymentId(), merchantId, provider: 'default', paymentKey: `pk_${randomUUID()}`, orderId: `order-${randomUUID()}`,
    amount: 1_000, currency: 'KRW', metadata: null, requestId: `req-${n}`, createdAt: Date.now(),
  };
  const res = await store.create(p, randomUUID(), 'fp', { head: '', tail: '', rate: RATE }, ceiling, weight);
  return res.kind === 'created' ? p.id : res.kind;
}
async function payMany(merchantId: string, count: number, weight = 1): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await pay(merchantId, weight));
  return ids;
}
/** The merchant of each admitted payment, in order. */
async function merchantsOf(ids: string[]): Promise<string[]> {
  return Promise.all(ids.map(async (id) => (await redis.hget(store.keys.payment(id), 'merchantId'))!));
}
/** What the guard does to an admitted payment once its confirm reaches it. */
async function sendAll(ids: string[]): Promise<void> {
  if (ids.length) await redis.zrem(fair.keys.admitted, ...ids);
}
const count = (xs: string[], x: string): number => xs.filter((y) => y === x).length;

describe('admission by turns', () => {
  it("serves a merchant that arrives behind another's flood at its next turn, not behind the flood", async () => {
    await payMany('A', 100);
    const b = await payMany('B', 3);
    const admitted = await fair.admit(6, 6, 60_000);
    expect(await merchantsOf(admitted)).toEqual(['A', 'B', 'A', 'B', 'A', 'B']);
    expect(admitted.filter((id) => b.includes(id))).toEqual(b);
    // Admitted payments carry an outbox marker until their job is added.
    expect(await redis.zcard(store.keys.outbox)).toBe(6);
  });

  it('shares by weight, 3:1, while both have payments waiting', async () => {
    await payMany('A', 400, 3);
    await payMany('B', 400, 1);
    const admitted: string[] = [];
    while (admitted.length < 400) {
      const ids = await fair.admit(50, 50, 60_000);
      admitted.push(...ids);
      await sendAll(ids);
    }
    const who = await merchantsOf(admitted);
    expect(count(who, 'A')).toBe(300);
    expect(count(who, 'B')).toBe(100);
  });

  it('is work-conserving: what one merchant leaves, the others use', async () => {
    await payMany('A', 100);
    await payMany('B', 2);
    const who = await merchantsOf(await fair.admit(20, 20, 60_000));
    expect(count(who, 'B')).toBe(2);
    expect(count(who, 'A')).toBe(18);
    // B left the ring with its queue empty: only A waits, with only its weight.
    expect(await redis.lrange(fair.keys.ring, 0, -1)).toEqual(['A']);
    expect(await redis.hget(fair.keys.meta, 'weights')).toBe('1');
  });

  it('keeps the admitted payments at the lead, and admits more only as they are sent', async () => {
    await payMany('A', 50);
    expect(await fair.admit(10, 100, 60_000)).toHaveLength(10);
    expect(await fair.admit(10, 100, 60_000)).toHaveLength(0);
    const more = await fair.admit(12, 100, 60_000);
    expect(more).toHaveLength(2);
    await sendAll(more);
    expect(await fair.admit(12, 1, 60_000)).toHaveLength(1);
  });

  it('stops counting a payment admitted longer ago than the stale time (its worker died with its job): the live workers admit more', async () => {
    await payMany('A', 50);
    expect(await fair.admit(10, 100, 60_000)).toHaveLength(10);
    expect(await fair.admit(10, 100, 60_000)).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 60));
    expect(await fair.admit(10, 100, 50)).toHaveLength(10);
  });

  it('admits nothing while the breaker is open, and admits again once it may probe', async () => {
    await payMany('A', 5);
    const [sec] = await redis.time();
    await redis.hset(store.keys.breaker, 'state', 'open', 'openUntil', Number(sec) * 1_000 + 60_000);
    expect(await fair.admit(10, 10, 60_000)).toEqual([]);
    expect(await redis.llen(fair.keys.queue('A'))).toBe(5);
    await redis.hset(store.keys.breaker, 'openUntil', Number(sec) * 1_000 - 1_000);
    expect(await fair.admit(10, 10, 60_000)).toHaveLength(5);
  });

  it('starves nobody among thousands of merchants, and keeps only those waiting in the ring', async () => {
    await payMany('flood', 3_000);
    const small: string[] = [];
    const pipe = [];
    for (let i = 0; i < 2_000; i++) pipe.push(pay(`m${i}`).then((id) => small.push(id)));
    await Promise.all(pipe);
    expect(await redis.llen(fair.keys.ring)).toBe(2_001);
    const admitted: string[] = [];
    // One turn each round: the flood gets one payment per round of 2,001 turns.
    while (admitted.length < 2_002) {
      const ids = await fair.admit(500, 500, 60_000);
      admitted.push(...ids);
      await sendAll(ids);
    }
    const set = new Set(admitted.slice(0, 2_002));
    expect(small.every((id) => set.has(id))).toBe(true);
    expect(count(await merchantsOf(admitted.slice(0, 2_002)), 'flood')).toBe(2);
    expect(await redis.llen(fair.keys.ring)).toBe(1);
    expect(await redis.hget(fair.keys.meta, 'weights')).toBe('1');
  });

  it('admits every payment exactly once with many workers admitting at the same time', async () => {
    const all = new Set([...(await payMany('A', 300)), ...(await payMany('B', 200)), ...(await payMany('C', 100))]);
    const workers = Array.from({ length: 6 }, () => connectRedis(REDIS_URL));
    const seen: string[] = [];
    try {
      await Promise.all(
        workers.map(async (w) => {
          const f = new FairShare(w, makeKeys(prefix));
          for (let idle = 0; idle < 5; ) {
            const ids = await f.admit(40, 10, 60_000);
            seen.push(...ids);
            await sendAll(ids);
            idle = ids.length === 0 ? idle + 1 : 0;
          }
        }),
      );
    } finally {
      await Promise.all(workers.map((w) => w.quit()));
    }
    expect(seen).toHaveLength(all.size);
    expect(new Set(seen)).toEqual(all);
    expect(await redis.llen(fair.keys.ring)).toBe(0);
    expect(await redis.hget(fair.keys.meta, 'weights')).toBe('0');
    for (const m of ['A', 'B', 'C']) {
      const h = await redis.hmget(fair.keys.merchant(m), 'in', 'out');
      expect(h[0]).toBe(h[1]);
    }
  });
});

describe('what the guard does for the fair share', () => {
  const transitions = () =>
    new Transitions(redis, makeKeys(prefix), {
      breaker: { consecutiveFailures: 5, failureRate: 0.5, minCalls: 10, windowMs: 10_000, openMs: 1_000, closeAfter: 1, probeIntervalMs: 100 },
      maxQueueAgeMs: 60_000,
      retentionMs: 60_000,
    });

  it('takes a confirm off the admitted payments when it is sent, not while the breaker holds it back', async () => {
    const [id] = await payMany('A', 1);
    expect(await fair.admit(5, 5, 60_000)).toEqual([id]);
    const t = transitions();
    await redis.hset(store.keys.breaker, 'state', 'open', 'openUntil', Date.now() + 60_000);
    expect((await t.guard({ paymentId: id!, call: 'confirm', allowed: ['queued'], to: 'confirming' })).ok).toBe(false);
    expect(await redis.zscore(fair.keys.admitted, id!)).not.toBeNull();
    await redis.del(store.keys.breaker);
    expect((await t.guard({ paymentId: id!, call: 'confirm', allowed: ['queued'], to: 'confirming' })).ok).toBe(true);
    expect(await redis.zscore(fair.keys.admitted, id!)).toBeNull();
  });

  it("charges an inquiry or a cancel to its merchant's turns: a merchant in doubt gets fewer confirms", async () => {
    const [doubt] = await payMany('A', 1);
    await sendAll(await fair.admit(5, 5, 60_000));
    await redis.hset(store.keys.payment(doubt!), 'phase', 'inquiring', 'status', 'PROCESSING');
    const t = transitions();
    for (let i = 0; i < 4; i++) expect((await t.guard({ paymentId: doubt!, call: 'inquire', allowed: ['inquiring'], to: 'inquiring' })).ok).toBe(true);
    expect(await redis.hget(fair.keys.merchant('A'), 'credit')).toBe('-4');

    await payMany('A', 50);
    await payMany('B', 50);
    const who = await merchantsOf(await fair.admit(20, 20, 60_000));
    // Twenty turns' worth: B gets its ten, A its ten less the four calls it was charged.
    expect(count(who, 'B')).toBe(12);
    expect(count(who, 'A')).toBe(8);
  });

  it('forgives a debt past ten turns: a merchant in doubt is slowed, never stopped', async () => {
    await payMany('A', 50);
    await payMany('B', 50);
    await redis.hset(fair.keys.merchant('A'), 'credit', -1_000);
    const who = await merchantsOf(await fair.admit(30, 30, 60_000));
    expect(count(who, 'A')).toBeGreaterThan(0);
    expect(count(who, 'B')).toBeLessThanOrEqual(21);
  });
});

describe("the merchant's backlog ceiling and eta", () => {
  it('refuses a merchant past the ceiling at its share, and only that merchant', async () => {
    // A ceiling of 10 send slots. A alone may have 10 waiting; it has 5.
    for (let i = 0; i < 5; i++) expect(await pay('A', 1, 10)).toMatch(/^pay_/);
    // B joins at its first turn, 2 slots away: A and B share the rate now.
    expect(await pay('B', 1, 10)).toMatch(/^pay_/);
    // A's sixth would be 6 turns at half the rate: 12 slots, past the ceiling. Only 6 of 10 are taken.
    const p: NewPayment = {
      id: newPaymentId(), merchantId: 'A', provider: 'default', paymentKey: `pk_${randomUUID()}`, orderId: `order-${randomUUID()}`,
      amount: 1_000, currency: 'KRW', metadata: null, requestId: null, createdAt: Date.now(),
    };
    // Retry-After: the time A's share takes to drain what is over the ceiling (2 slots at 500/s, at least a second).
    expect(await store.create(p, randomUUID(), 'fp', { head: '', tail: '', rate: RATE }, 10, 1)).toEqual({ kind: 'merchant_backlog_full', retryAfterSeconds: 1 });
    expect(await store.get(p.id)).toBeNull();
    expect(await redis.zcard(store.keys.open)).toBe(6);
    // B is not refused: its second is 4 slots away.
    expect(await pay('B', 1, 10)).toMatch(/^pay_/);
  });

  it("gives a merchant behind another's flood an eta at its own turn", async () => {
    await payMany('A', 100);
    const p: NewPayment = {
      id: newPaymentId(), merchantId: 'B', provider: 'default', paymentKey: `pk_${randomUUID()}`, orderId: `order-${randomUUID()}`,
      amount: 1_000, currency: 'KRW', metadata: null, requestId: null, createdAt: Date.now(),
    };
    const res = await store.create(p, randomUUID(), 'fp', { head: '', tail: '', rate: RATE }, 1_000_000);
    expect(res.kind).toBe('created');
    if (res.kind !== 'created') return;
    // Its first turn, at half the rate: 2 slots of 2 ms, not behind A's 100.
    expect(Date.parse(res.body) - p.createdAt).toBe(4);
    expect((await store.view(p.id))?.slots).toBe(2);
  });

  it('says a payment awaits admission until admitted, and not after', async () => {
    const [id] = await payMany('A', 1);
    expect(await fair.awaitingAdmission((await store.get(id!))!)).toBe(true);
    await fair.admit(5, 5, 60_000);
    expect(await fair.awaitingAdmission((await store.get(id!))!)).toBe(false);
    const view = await fair.view();
    expect(view).toMatchObject({ admitted: 1, merchants: 0, activeWeights: 0, top: [] });
  });
});
