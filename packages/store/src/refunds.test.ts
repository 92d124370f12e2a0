/** Merchant cancels in Redis (lua/refund.lua): every branch of a request, racing reservations, the guard and settling. */
import { describe, expect, it } from 'vitest';
import { newCancelId, RefundStore, type CancelRequest } from './refunds.ts';
import { BooksStream } from './books-stream.ts';
import { useTestStore } from './test-support.ts';

const ctx = useTestStore({ consecutiveFailures: 3, failureRate: 1, minCalls: 1_000, windowMs: 10_000, openMs: 60_000, probeIntervalMs: 5_000, closeAfter: 2 });
const refunds = () => new RefundStore(ctx.redis, { prefix: ctx.store.keys.prefix, retentionMs: 60_000 });

let n = 0;
async function payment(fields: Record<string, string | number>): Promise<string> {
  const id = `pay_refund_${++n}`;
  await ctx.redis.hset(ctx.store.keys.payment(id), {
    id, merchantId: 'm1', paymentKey: `pk_${id}`, orderId: `order-${id}`, amount: 10_000, attempts: 1, createdAt: Date.now(), ...fields,
  });
  await ctx.redis.zadd(ctx.store.keys.open, Date.now(), id);
  return id;
}
const approved = () => payment({ phase: 'final', status: 'APPROVED' });
const ask = (paymentId: string, amount: number | null, key = `k-${++n}`, over: Partial<CancelRequest> = {}) =>
  refunds().request({ paymentId, merchantId: 'm1', cancelId: newCancelId(), amount, reason: 'returned', idemKeyHash: key, fingerprint: `${paymentId}:${amount}`, ...over });
const rec = async (id: string) => (await ctx.store.get(id))!;

describe('a merchant cancel request', () => {
  it('QUEUED: CANCELED at once, claims released, the cancel SUCCEEDED, no PG call due', async () => {
    const id = await payment({ phase: 'queued', status: 'QUEUED', attempts: 0 });
    expect((await ask(id, null)).kind).toBe('ok');
    const r = await rec(id);
    expect([r.status, r.phase, r.failure?.code, r.canceledAmount]).toEqual(['CANCELED', 'final', 'CANCELED_BY_MERCHANT', 10_000]);
    expect(await ctx.redis.hget(ctx.store.keys.payment(id), 'claimsReleased')).toBe('1');
    expect(r.refunds).toMatchObject([{ amount: 10_000, status: 'SUCCEEDED' }]);
    expect(await ctx.redis.zscore(ctx.store.keys.open, id)).toBeNull();
    expect(await ctx.redis.zscore(ctx.store.keys.refundDue, id)).toBeNull();
  });

  it('QUEUED or PROCESSING: a part is not cancelable yet; PROCESSING in full becomes the payment\'s own cancel', async () => {
    const q = await payment({ phase: 'queued', status: 'QUEUED', attempts: 0 });
    expect((await ask(q, 4_000)).kind).toBe('not_yet');
    const p = await payment({ phase: 'confirming', status: 'PROCESSING' });
    expect((await ask(p, 4_000)).kind).toBe('not_yet');
    expect((await ask(p, 10_000)).kind).toBe('ok');
    const r = await rec(p);
    expect([r.phase, r.status, r.cancels, r.reservedAmount]).toEqual(['canceling', 'PROCESSING', 1, 10_000]);
    expect(r.refunds).toMatchObject([{ kind: 'void', status: 'PENDING', amount: 10_000 }]);
    // One is enough: a second full cancel finds the amount reserved.
    expect((await ask(p, null)).kind).toBe('exceeds');
  });

  it('a void settles with the payment: SUCCEEDED when it ends CANCELED; a refund due when it ended APPROVED', async () => {
    const t = ctx.t;
    const a = await payment({ phase: 'confirming', status: 'PROCESSING' });
    await ask(a, null);
    await t.apply({ paymentId: a, expected: 'canceling', step: { do: 'finalize', status: 'CANCELED' }, event: {} });
    expect((await rec(a)).refunds).toMatchObject([{ status: 'SUCCEEDED' }]);
    expect((await rec(a)).canceledAmount).toBe(10_000);

    const b = await payment({ phase: 'inquiring', status: 'PROCESSING' });
    await ask(b, null);
    await t.apply({ paymentId: b, expected: 'canceling', step: { do: 'finalize', status: 'APPROVED' }, event: {} });
    const r = await rec(b);
    expect(r.refunds).toMatchObject([{ kind: 'refund', status: 'PENDING', amount: 10_000 }]);
    expect(await ctx.redis.zscore(ctx.store.keys.refundDue, b)).not.toBeNull();

    const c = await payment({ phase: 'inquiring', status: 'PROCESSING' });
    await ask(c, null);
    await t.apply({ paymentId: c, expected: 'canceling', step: { do: 'finalize', status: 'DECLINED' }, event: {} });
    expect((await rec(c)).refunds).toMatchObject([{ status: 'FAILED', failure: { code: 'NOT_CANCELABLE' } }]);
    expect((await rec(c)).reservedAmount).toBe(0);
  });

  it('DECLINED, FAILED, CANCELED: not cancelable; another merchant\'s payment is not found', async () => {
    for (const status of ['DECLINED', 'FAILED', 'CANCELED']) {
      expect((await ask(await payment({ phase: 'final', status }), null)).kind).toBe('not_cancelable');
    }
    expect((await ask(await approved(), null, undefined, { merchantId: 'm2' })).kind).toBe('not_found');
    expect((await ask('pay_nothing_here', null)).kind).toBe('not_found');
  });

  it('APPROVED: 40 racing cancels of 1,000 on a 10,000 balance: exactly 10 reserved, the rest refused', async () => {
    const id = await approved();
    const results = await Promise.all(Array.from({ length: 40 }, () => ask(id, 1_000)));
    expect(results.filter((r) => r.kind === 'ok')).toHaveLength(10);
    expect(results.filter((r) => r.kind === 'exceeds')).toHaveLength(30);
    const r = await rec(id);
    expect([r.reservedAmount, r.refunds.length]).toEqual([10_000, 10]);
    expect(await ctx.redis.zscore(ctx.store.keys.refundDue, id)).not.toBeNull();
    expect((await ask(id, null)).kind).toBe('exceeds');
  });

  it('the same key: the same body replays its cancel and stored answer; another body is reused', async () => {
    const id = await approved();
    const first = await ask(id, 2_000, 'same-key');
    expect(first.kind).toBe('ok');
    await refunds().storeAnswer(id, 'm1', 'same-key', '{"stored":true}');
    expect(await ask(id, 2_000, 'same-key')).toEqual({ kind: 'replay', cancelId: (first as { cancelId: string }).cancelId, body: '{"stored":true}' });
    expect((await ask(id, 3_000, 'same-key')).kind).toBe('reused');
    expect((await rec(id)).refunds).toHaveLength(1);
  });
});

describe('the refund guard and settling', () => {
  it('one cancel in flight per payment; once sent it is never let out again, only queried', async () => {
    const s = refunds();
    const id = await approved();
    await ask(id, 3_000);
    await ask(id, 2_000);
    const [first, second] = (await rec(id)).refunds;
    // Only the head may go, and only once.
    expect((await s.guard({ paymentId: id, cancelId: second!.id, op: 'send' })).ok).toBe(false);
    expect(await s.guard({ paymentId: id, cancelId: first!.id, op: 'send' })).toMatchObject({ ok: true, paymentKey: `pk_${id}`, amount: 3_000 });
    expect((await s.guard({ paymentId: id, cancelId: first!.id, op: 'send' })).ok).toBe(false);
    expect((await s.guard({ paymentId: id, cancelId: first!.id, op: 'send', recheck: true })).ok).toBe(true);
    // Its outcome is not known: checking. A retry (resend) is refused from here on.
    expect(await s.settle(id, first!.id, { do: 'check', delayMs: 0 }, {})).toBe(true);
    expect(await s.settle(id, first!.id, { do: 'retry', delayMs: 0 }, {})).toBe(false);
    expect((await s.guard({ paymentId: id, cancelId: first!.id, op: 'send', recheck: true })).ok).toBe(false);
    expect((await s.guard({ paymentId: id, cancelId: first!.id, op: 'check' })).ok).toBe(true);
    // Settled: the money counted, the next one due.
    expect(await s.settle(id, first!.id, { do: 'succeed', transactionKey: 'tx-c1' }, {})).toBe(true);
    let r = await rec(id);
    expect([r.status, r.canceledAmount, r.reservedAmount]).toEqual(['APPROVED', 3_000, 2_000]);
    expect(r.refunds[0]).toMatchObject({ status: 'SUCCEEDED', pgTransactionKey: 'tx-c1' });
    expect((await s.guard({ paymentId: id, cancelId: second!.id, op: 'send' })).ok).toBe(true);
    expect(await s.settle(id, second!.id, { do: 'fail', failure: { code: 'NOT_CANCELABLE_AMOUNT', message: 'no' } }, {})).toBe(true);
    r = await rec(id);
    expect([r.canceledAmount, r.reservedAmount]).toEqual([3_000, 0]);
    expect(await ctx.redis.zscore(ctx.store.keys.refundDue, id)).toBeNull();
    // The balance left can be cancelled; at 0 the payment shows CANCELED.
    await ask(id, null);
    const third = (await rec(id)).refunds[2]!;
    expect(third.amount).toBe(7_000);
    await s.guard({ paymentId: id, cancelId: third.id, op: 'send' });
    await s.settle(id, third.id, { do: 'succeed', transactionKey: 'tx-c3' }, {});
    r = await rec(id);
    expect([r.status, r.phase, r.canceledAmount]).toEqual(['CANCELED', 'final', 10_000]);
    expect((await ask(id, 1)).kind).toBe('not_cancelable');
  });

  it('a PG call held back by the breaker leaves nothing in flight', async () => {
    const s = refunds();
    const id = await approved();
    await ask(id, 1_000);
    const c = (await rec(id)).refunds[0]!;
    await ctx.redis.hset(ctx.store.keys.breaker, 'state', 'open', 'openUntil', Date.now() + 60_000);
    try {
      expect(await s.guard({ paymentId: id, cancelId: c.id, op: 'send' })).toEqual({ ok: false, reason: 'breaker' });
      expect(await ctx.redis.hget(ctx.store.keys.payment(id), 'refundPhase')).toBeNull();
    } finally {
      await ctx.redis.del(ctx.store.keys.breaker);
    }
  });

  it('claims lease a due payment: a second claim does not take it until the lease lapses', async () => {
    const s = refunds();
    await ctx.redis.del(ctx.store.keys.refundDue);
    const id = await approved();
    await ask(id, 500);
    expect(await s.claim(10, 300)).toEqual([id]);
    expect(await s.claim(10, 300)).toEqual([]);
    await new Promise((r) => setTimeout(r, 350));
    expect(await s.claim(10, 300)).toEqual([id]);
  });

  it('a payment no longer approved (repaired to CANCELED) fails its waiting refunds, sending nothing', async () => {
    const s = refunds();
    const id = await approved();
    await ask(id, 1_000);
    const c = (await rec(id)).refunds[0]!;
    await ctx.redis.hset(ctx.store.keys.payment(id), 'status', 'CANCELED');
    expect(await s.guard({ paymentId: id, cancelId: c.id, op: 'send' })).toEqual({ ok: false, reason: 'phase' });
    const r = await rec(id);
    expect(r.refunds).toMatchObject([{ status: 'FAILED', failure: { code: 'NOT_CANCELABLE' } }]);
    expect(r.reservedAmount).toBe(0);
    expect(await ctx.redis.zscore(ctx.store.keys.refundDue, id)).toBeNull();
  });

  it('a payment Redis was to forget stays while a cancel of it is pending, and is not archived until it is settled', async () => {
    const id = await approved();
    await ctx.redis.pexpire(ctx.store.keys.payment(id), 60_000);
    await ask(id, 1_000);
    expect(await ctx.redis.pttl(ctx.store.keys.payment(id))).toBe(-1);
    const books = new BooksStream(ctx.redis, ctx.store.keys);
    const archived = async () => {
      const v = Number(await ctx.redis.hget(ctx.store.keys.payment(id), 'v'));
      return books.archive({ id, version: v, merchantId: 'm1', idemHash: 'x', paymentKey: `pk_${id}`, orderId: `order-${id}`, createdAt: Date.now() }, 60_000, 0);
    };
    expect(await archived()).toBe(false);
    const s = refunds();
    const c = (await rec(id)).refunds[0]!;
    await s.guard({ paymentId: id, cancelId: c.id, op: 'send' });
    await s.settle(id, c.id, { do: 'succeed', transactionKey: 'tx-a' }, {});
    expect(await archived()).toBe(true);
    expect(await ctx.redis.pttl(ctx.store.keys.payment(id))).toBeGreaterThan(0);
  });
});
