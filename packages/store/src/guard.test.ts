/** The phase guard (guard.lua) and its re-check, over real Redis. */
import { describe, expect, it } from 'vitest';
import { useTestStore } from './test-support.ts';

const ctx = useTestStore({ consecutiveFailures: 3, failureRate: 1, minCalls: 1_000, windowMs: 10_000, openMs: 60_000, probeIntervalMs: 5_000, closeAfter: 2 });

let n = 0;
async function queued(): Promise<string> {
  const id = `pay_guard_${++n}`;
  await ctx.redis.hset(ctx.store.keys.payment(id), 'id', id, 'phase', 'queued', 'status', 'QUEUED', 'paymentKey', `pk_${id}`, 'orderId', `order-${id}`, 'amount', 1_000, 'attempts', 0, 'createdAt', Date.now());
  return id;
}
const field = async (id: string, f: string) => ctx.redis.hget(ctx.store.keys.payment(id), f);

describe('the phase guard', () => {
  it('a re-check passes while the phase still allows the call, and counts nothing again', async () => {
    const id = await queued();
    expect(await ctx.t.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' })).toMatchObject({ ok: true, attempts: 1 });
    expect(await ctx.t.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming', recheck: true })).toMatchObject({ ok: true, attempts: 1 });
    expect([await field(id, 'phase'), await field(id, 'attempts'), await field(id, 'pgCalls')]).toEqual(['confirming', '1', '1']);
  });

  it('a re-check refuses once the payment moved on, or once the breaker opened for confirms', async () => {
    const id = await queued();
    expect((await ctx.t.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' })).ok).toBe(true);
    await ctx.redis.hset(ctx.store.keys.payment(id), 'phase', 'canceling');
    expect(await ctx.t.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming', recheck: true })).toEqual({ ok: false, reason: 'phase', phase: 'canceling' });
    // That try was counted when it passed and will never be written: it is settled.
    expect([await field(id, 'attempts'), await field(id, 'confirmsSettled')]).toEqual(['1', '1']);

    const other = await queued();
    expect((await ctx.t.guard({ paymentId: other, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' })).ok).toBe(true);
    await ctx.redis.hset(ctx.store.keys.breaker, 'state', 'open', 'openUntil', Date.now() + 60_000);
    try {
      expect(await ctx.t.guard({ paymentId: other, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming', recheck: true })).toEqual({ ok: false, reason: 'breaker', state: 'open' });
      expect(await field(other, 'confirmsSettled')).toBe('1');
      // A first pass refused counted no try, so it settles none.
      const third = await queued();
      expect((await ctx.t.guard({ paymentId: third, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' })).ok).toBe(false);
      expect([await field(third, 'attempts'), await field(third, 'confirmsSettled')]).toEqual(['0', null]);
    } finally {
      await ctx.redis.del(ctx.store.keys.breaker);
    }
  });

  it('with the breaker open, an inquiry holding the probe token keeps it on its re-check; another waits', async () => {
    const a = await queued();
    const b = await queued();
    await ctx.redis.hset(ctx.store.keys.payment(a), 'phase', 'inquiring');
    await ctx.redis.hset(ctx.store.keys.payment(b), 'phase', 'inquiring');
    await ctx.redis.hset(ctx.store.keys.breaker, 'state', 'open', 'openUntil', Date.now() + 60_000);
    try {
      expect((await ctx.t.guard({ paymentId: a, call: 'inquire', allowed: ['inquiring'], to: 'inquiring' })).ok).toBe(true);
      expect((await ctx.t.guard({ paymentId: a, call: 'inquire', allowed: ['inquiring'], to: 'inquiring', recheck: true })).ok).toBe(true);
      expect(await ctx.t.guard({ paymentId: b, call: 'inquire', allowed: ['inquiring'], to: 'inquiring' })).toEqual({ ok: false, reason: 'breaker', state: 'open' });
      expect(await ctx.t.guard({ paymentId: b, call: 'inquire', allowed: ['inquiring'], to: 'inquiring', recheck: true })).toEqual({ ok: false, reason: 'breaker', state: 'open' });
    } finally {
      await ctx.redis.del(ctx.store.keys.breaker, `${ctx.store.keys.breaker}:probe`);
    }
  });

  it('an answer that settles a confirm try counts it even when its step finds the payment moved on', async () => {
    const id = await queued();
    expect((await ctx.t.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' })).ok).toBe(true);
    await ctx.redis.hset(ctx.store.keys.payment(id), 'phase', 'inquiring');
    expect(await ctx.t.apply({ paymentId: id, expected: 'confirming', step: { do: 'inquire', delayMs: 0, answered: false }, event: { call: 'confirm' }, settlesConfirm: true })).toBeNull();
    expect(await ctx.t.apply({ paymentId: id, expected: 'confirming', step: { do: 'inquire', delayMs: 0, answered: false }, event: { call: 'confirm' }, settlesConfirm: false })).toBeNull();
    expect(await field(id, 'confirmsSettled')).toBe('1');
    const rec = await ctx.store.get(id);
    expect([rec!.attempts, rec!.confirmsSettled]).toEqual([1, 1]);
  });

  it('tells the books of a confirm try and of a phase moved, not of a repeat call in the same phase', async () => {
    const id = await queued();
    const entries = async () => ((await ctx.redis.xrange(ctx.store.keys.books, '-', '+')) as [string, string[]][]).filter(([, f]) => f[f.indexOf('id') + 1] === id).length;
    expect((await ctx.t.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' })).ok).toBe(true);
    expect(await entries()).toBe(1);
    expect((await ctx.t.guard({ paymentId: id, call: 'inquire', allowed: ['confirming', 'inquiring'], to: 'inquiring' })).ok).toBe(true);
    expect(await entries()).toBe(2);
    // Asked again in the phase it is in: only the call count moved.
    expect((await ctx.t.guard({ paymentId: id, call: 'inquire', allowed: ['inquiring'], to: 'inquiring' })).ok).toBe(true);
    expect(await entries()).toBe(2);
    expect(await field(id, 'pgCalls')).toBe('3');
  });
});
