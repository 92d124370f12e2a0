/**
 * Every way a payment becomes final wakes its long poll: a merchant waiting with `?wait=20` gets
 * the final state back within seconds, whichever script made it final. Each path runs the
 * worker's own Lua (the phase guard and apply-step, through `Transitions`) on real Redis, as the
 * worker and the reconciler do; all of them share includes/finalize.lua.
 */
import { Transitions } from '@sluice/store';
import type { Step } from '@sluice/domain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, paymentBody, postPayment, startTestApp, type TestApp } from './test-support.ts';

let t: TestApp;
let transitions: Transitions;
/** Queued payments expire at once here: the guard's expiry path. */
let expiring: Transitions;
beforeAll(async () => {
  t = await startTestApp();
  const breaker = { consecutiveFailures: 20, failureRate: 0.5, minCalls: 40, windowMs: 10_000, openMs: 5_000, probeIntervalMs: 1_000, closeAfter: 2 };
  transitions = new Transitions(t.redis, t.store.keys, { breaker, maxQueueAgeMs: 60_000, retentionMs: 60_000 });
  expiring = new Transitions(t.redis, t.store.keys, { breaker, maxQueueAgeMs: -1, retentionMs: 60_000 });
});
afterAll(async () => {
  await t.close();
});

const final = (status: 'APPROVED' | 'DECLINED' | 'CANCELED' | 'FAILED', failure?: { code: string; message: string }): Step =>
  failure ? { do: 'finalize', status, failure } : { do: 'finalize', status, pg: { transactionKey: 'tx-1', approvedAt: '2026-12-06T00:00:00+09:00' } };

/** Drives one payment from QUEUED to a final state as the worker would; returns the expected status. */
const PATHS: Record<string, (id: string) => Promise<string>> = {
  confirm: async (id) => {
    expect((await transitions.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' })).ok).toBe(true);
    expect(await transitions.apply({ paymentId: id, expected: 'confirming', step: final('APPROVED'), event: { call: 'confirm' }, settlesConfirm: true })).toBe('final');
    return 'APPROVED';
  },
  decline: async (id) => {
    await transitions.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' });
    expect(await transitions.apply({ paymentId: id, expected: 'confirming', step: final('DECLINED', { code: 'REJECT_CARD_COMPANY', message: 'no' }), event: { call: 'confirm' }, settlesConfirm: true })).toBe('final');
    return 'DECLINED';
  },
  'inquiry (in doubt, then approved)': async (id) => {
    await transitions.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' });
    await transitions.apply({ paymentId: id, expected: 'confirming', step: { do: 'inquire', delayMs: 0, answered: false }, event: { call: 'confirm' } });
    await transitions.guard({ paymentId: id, call: 'inquire', allowed: ['inquiring'], to: 'inquiring' });
    expect(await transitions.apply({ paymentId: id, expected: 'inquiring', step: final('APPROVED'), event: { call: 'inquire' } })).toBe('final');
    return 'APPROVED';
  },
  cancel: async (id) => {
    await transitions.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' });
    await transitions.apply({ paymentId: id, expected: 'confirming', step: { do: 'inquire', delayMs: 0, answered: false }, event: { call: 'confirm' } });
    await transitions.apply({ paymentId: id, expected: 'inquiring', step: { do: 'cancel' }, event: { call: 'inquire' } });
    await transitions.guard({ paymentId: id, call: 'cancel', allowed: ['canceling'], to: 'canceling' });
    expect(await transitions.apply({ paymentId: id, expected: 'canceling', step: final('CANCELED', { code: 'CANCELED_BY_SLUICE', message: 'voided' }), event: { call: 'cancel' } })).toBe('final');
    return 'CANCELED';
  },
  'expiry in the queue': async (id) => {
    expect(await expiring.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' })).toEqual({ ok: false, reason: 'expired' });
    return 'FAILED';
  },
};

describe('every path to a final state wakes the long poll', () => {
  for (const [path, drive] of Object.entries(PATHS)) {
    it(`${path}: ?wait=20 answers the final state within 5 s`, async () => {
      const posted = await postPayment(t, { key: t.keyA, body: paymentBody() });
      expect(posted.status).toBe(202);
      const id = posted.json.id as string;
      const started = Date.now();
      const waiting = get(t, `/v1/payments/${id}?wait=20`, t.keyA);
      // The poll is registered before the payment moves (else it would read the final state at once).
      for (let i = 0; i < 200 && t.waiters.size === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(t.waiters.size).toBe(1);
      const status = await drive(id);
      const res = await waiting;
      expect(res.json.status).toBe(status);
      expect(Date.now() - started).toBeLessThan(5_000);
      // And the rest of what "final" means: out of the backlog and in-doubt sets, counted, charted.
      const k = t.store.keys;
      expect(await t.redis.zscore(k.open, id)).toBeNull();
      expect(await t.redis.zscore(k.inDoubt, id)).toBeNull();
      const rec = await t.store.get(id);
      expect(rec).toMatchObject({ phase: 'final', status });
      expect(rec!.finalizedAt).not.toBeNull();
      const perSecond = await t.redis.hget(k.finalRate, `${Math.floor(rec!.finalizedAt! / 1000)}:${status}`);
      expect(Number(perSecond)).toBeGreaterThanOrEqual(1);
      if (status !== 'APPROVED') {
        const failures = (await t.redis.lrange(k.recentFailures, 0, -1)).map((f) => JSON.parse(f) as { id: string });
        expect(failures.some((f) => f.id === id)).toBe(true);
      }
    });
  }

  it('reconciliation: a repair of a final payment is published too, and shows on the next read', async () => {
    const posted = await postPayment(t, { key: t.keyA, body: paymentBody() });
    const id = posted.json.id as string;
    await PATHS.confirm!(id);
    const sub = t.redis.duplicate();
    const heard: string[] = [];
    try {
      await sub.subscribe(t.store.keys.finalChannel);
      sub.on('message', (_channel, message: string) => heard.push(message));
      expect(await transitions.repair(id, 'CANCELED', 'the PG holds it canceled', { call: 'reconcile' })).toBe(true);
      for (let i = 0; i < 200 && !heard.includes(id); i++) await new Promise((r) => setTimeout(r, 10));
      expect(heard).toContain(id);
      expect((await get(t, `/v1/payments/${id}?wait=20`, t.keyA)).json.status).toBe('CANCELED');
    } finally {
      sub.disconnect();
    }
  });
});
