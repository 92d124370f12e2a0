/**
 * Graceful shutdown of real processes: SIGTERM to a busy worker finishes (or hands back) its
 * in-flight PG calls within the grace period and exits 0; SIGTERM to the API finishes requests
 * in flight. Afterwards every acknowledged payment still ends final, matching the PG, charged once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkInvariants, type LedgerEntry } from '@sluice/test-support';
import { getJson } from '@sluice/test-support';
import { drain, postPayment, readPayments, startStack, type Stack } from './support/stack.ts';
import { startPrivateRedis } from './support/redis-server.ts';

let s: Stack;
beforeAll(async () => {
  s = await startStack({
    sim: { SIM_LATENCY_MEDIAN_MS: '400', SIM_LATENCY_P99_MS: '1500' },
    env: { WORKER_SHUTDOWN_GRACE_MS: '4000', WORKER_LOCK_MS: '3000' },
  });
});
afterAll(async () => {
  await s?.stop();
});

describe('graceful shutdown', () => {
  it('a worker on SIGTERM exits 0 within its grace period; a second worker finishes the rest', async () => {
    const run = Date.now().toString(36);
    const posts = await Promise.all(
      Array.from({ length: 300 }, (_, i) => postPayment(s.apiUrl, { paymentKey: `pk_${run}_${i}`, orderId: `order-${run}-${i}`, amount: 100 }, `sd-${run}-${i}`)),
    );
    const ids = posts.map((p) => p.body.id);
    await new Promise((r) => setTimeout(r, 600));
    const worker = s.workers.pop()!;
    const t0 = Date.now();
    const code = await worker.stop('SIGTERM');
    const took = Date.now() - t0;
    expect(code).toBe(0);
    expect(took).toBeLessThan(4_000 + 3_000);
    await s.startWorker();
    await drain(s.redis, s.prefix, 60_000);
    const records = await readPayments(s.redis, s.prefix, ids);
    const views = new Map([...records].map(([id, r]) => [id, { id, paymentKey: r.paymentKey!, status: r.status! }]));
    const ledger = (await getJson<{ payments: Record<string, LedgerEntry> }>(`${s.simUrl}/__sim/ledger`)).payments;
    const report = checkInvariants(ids, views, ledger);
    expect(report).toMatchObject({ lost: [], notFinal: [], doubleCharges: [], mismatches: [], final: 300 });
  });

  it('the API on SIGTERM answers the requests already in flight, then exits 0', async () => {
    const run = Date.now().toString(36);
    const created = async () => Number((await s.redis.hget(`${s.prefix}:counters`, 'intake:created')) ?? 0);
    const before = await created();
    const inFlight = Array.from({ length: 40 }, (_, i) =>
      postPayment(s.apiUrl, { paymentKey: `pk_${run}_a${i}`, orderId: `order-${run}-a${i}`, amount: 100 }, `sda-${run}-${i}`).catch(() => null),
    );
    // SIGTERM once the API is working through them (one written), not at a fixed moment that a
    // slow machine may reach before any request is on the wire.
    for (let i = 0; i < 1_000 && (await created()) === before; i++) await new Promise((r) => setTimeout(r, 2));
    const code = await s.api.stop('SIGTERM');
    const answers = await Promise.all(inFlight);
    expect(code).toBe(0);
    const answered = answers.filter((a) => a !== null);
    expect(answered.length).toBeGreaterThan(0);
    // Whatever was answered was a 202, and each of those payments exists and ends final.
    expect(answered.every((a) => a!.status === 202)).toBe(true);
    await s.startApi();
    await drain(s.redis, s.prefix, 60_000);
    const records = await readPayments(s.redis, s.prefix, answered.map((a) => a!.body.id));
    expect(records.size).toBe(answered.length);
    for (const r of records.values()) expect(r.status).toBe('APPROVED');
  });
});

describe('shutdown with Redis gone', () => {
  it('a worker and the API on SIGTERM exit within their grace periods even though Redis does not answer', async () => {
    const redis = await startPrivateRedis();
    const stack = await startStack({ redisUrl: redis.url, env: { WORKER_SHUTDOWN_GRACE_MS: '3000', WORKER_LOCK_MS: '3000' } });
    try {
      const run = Date.now().toString(36);
      await Promise.all(Array.from({ length: 50 }, (_, i) => postPayment(stack.apiUrl, { paymentKey: `pk_${run}_g${i}`, orderId: `order-${run}-g${i}`, amount: 100 }, `sdg-${run}-${i}`)));
      await redis.kill9();
      // Work keeps asking Redis meanwhile: a request in flight at the API, admissions at the worker.
      const stuck = postPayment(stack.apiUrl, { paymentKey: `pk_${run}_late`, orderId: `order-${run}-late`, amount: 100 }, `sdg-${run}-late`).catch(() => null);
      await new Promise((r) => setTimeout(r, 500));
      const t0 = Date.now();
      const timed = async (stop: Promise<number | null>) => ({ code: await stop, took: Date.now() - t0 });
      const [worker, api] = await Promise.all([timed(stack.workers[0]!.stop('SIGTERM')), timed(stack.api.stop('SIGTERM'))]);
      // Unclean (the worker could not hand its jobs back: their locks lapse and other workers take
      // them over), but gone within the grace period and a little over.
      expect(worker.code).toBe(1);
      expect(worker.took).toBeLessThan(3_000 + 3_000);
      expect(api.code).toBe(1);
      expect(api.took).toBeLessThan(10_000 + 3_000);
      expect(stack.workers[0]!.output()).toMatch(/Redis did not answer/);
      await stuck;
    } finally {
      // The stack's own clean-up talks to Redis: bring it back first.
      await redis.restart();
      await stack.stop().catch(() => undefined);
      await redis.stop();
    }
  });
});
