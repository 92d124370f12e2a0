/**
 * The worker against the simulator (port 0) and real Redis: the plain outcomes of a confirm.
 * Each case asserts Sluice's final state and the PG's ledger.
 */
import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify, resolutionPolicyOf } from '@sluice/domain';
import type { CallReport } from '@sluice/pg-client';
import { FairShare, newPaymentId } from '@sluice/store';
import { confirmKey, PaymentDriver } from './driver.ts';
import type { PgPort } from './sender/pg-port.ts';
import { startHarness, type Harness } from './test-harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

/**
 * A QUEUED payment admitted with no confirm job (admission paused, its outbox marker cleared):
 * the test drives it by hand.
 */
async function queuedPayment(paymentKey: string, tag: string): Promise<string> {
  const w = h.worker;
  const id = newPaymentId();
  await w.admitter.stop();
  try {
    const created = await w.store.create(
      { id, merchantId: 'm-manual', provider: 'default', paymentKey, orderId: `order-${tag}-${id.slice(-8)}`, amount: 1_000, currency: 'KRW', metadata: null, requestId: null, createdAt: Date.now() },
      `idem-${id}`, `fp-${id}`, '{}', 1_000_000,
    );
    expect(created.kind).toBe('created');
    expect(await new FairShare(w.redis, w.store.keys).admit(1_000, 1_000, 60_000)).toEqual([id]);
    await w.redis.zrem(w.store.keys.outbox, id);
  } finally {
    w.admitter.start();
  }
  return id;
}

describe('worker → PG', () => {
  it('approves: APPROVED with the PG transactionKey, charged once', async () => {
    const id = await h.pay('sim_approve_w1', 15_000);
    const [rec] = await h.settle([id]);
    expect(rec).toMatchObject({ status: 'APPROVED', phase: 'final' });
    expect(rec!.transactionKey).toBeTruthy();
    // One confirm reached the PG. (The record's `attempts` also counts a try held back on our side
    // before it was written, e.g. every send slot late on a loaded machine.)
    expect(h.ledger()['sim_approve_w1']).toMatchObject({ status: 'DONE', chargeCount: 1, confirmArrivals: 1 });
  });

  it('declines: DECLINED with the PG code, never retried', async () => {
    const id = await h.pay('sim_decline_w2');
    const [rec] = await h.settle([id]);
    expect(rec!.status).toBe('DECLINED');
    expect(rec!.failure?.code).toMatch(/REJECT_CARD_COMPANY|INVALID_CARD_EXPIRATION|EXCEED_MAX_AMOUNT|NOT_ENOUGH_BALANCE/);
    expect(h.ledger()['sim_decline_w2']).toMatchObject({ status: 'ABORTED', chargeCount: 0, confirmArrivals: 1 });
  });

  it('unknown session: FAILED NOT_FOUND_PAYMENT_SESSION, nothing at the PG', async () => {
    const id = await h.pay('sim_nosession_w3');
    const [rec] = await h.settle([id]);
    expect(rec).toMatchObject({ status: 'FAILED', failure: { code: 'NOT_FOUND_PAYMENT_SESSION' } });
    expect(h.ledger()['sim_nosession_w3']?.chargeCount ?? 0).toBe(0);
  });

  it('sends the confirm with an Idempotency-Key derived from the payment id', () => {
    expect(confirmKey('pay_x')).toBe('sluice.pay_x.confirm');
  });
});

describe('an answer that finds its payment moved on', () => {
  it('runs the job again, which drives the payment from where it is: it is never left without a job', async () => {
    const w = h.worker;
    const id = await queuedPayment('pk_moved_w10', 'moved');
    // The confirm is approved, but meanwhile another job moved the payment to inquiring (as a
    // stalled job's re-run does), so the approval's finalize is stale.
    const pg: PgPort = Object.create(w.pg, {
      confirm: {
        value: async (...args: Parameters<PgPort['confirm']>) => {
          // Until the PG answers: on a loaded machine a try can be held back on our side (every
          // send slot late), and this test is about what follows an answer.
          let r = await w.pg.confirm(...args);
          while (!r.refused && r.outcome.kind === 'not_sent') r = await w.pg.confirm(...args);
          await w.redis.hset(w.store.keys.payment(id), 'phase', 'inquiring');
          return r;
        },
      },
    });
    const driver = new PaymentDriver({ pg, store: w.store, transitions: w.transitions, policy: resolutionPolicyOf(w.config), log: w.log });

    expect(await driver.step(id, 'confirm', 0)).toEqual({ kind: 'again', delayMs: 0 });
    // Run again from the confirm queue: the payment is the resolve queue's now, handed over.
    expect(await driver.step(id, 'confirm', 0)).toEqual({ kind: 'resolve', delayMs: 0 });
    // And the resolve job learns the PG's answer by inquiry.
    expect(await driver.step(id, 'resolve', 0)).toEqual({ kind: 'done', phase: 'final' });
    expect((await w.store.get(id))!.status).toBe('APPROVED');
    expect(h.ledger()['pk_moved_w10']).toMatchObject({ status: 'DONE', chargeCount: 1, confirmArrivals: 1 });
  });
});

describe('a confirm that never got a connection', () => {
  it('is tried again, not dropped: the payment was still QUEUED, with only this job to send it', async () => {
    const w = h.worker;
    const id = await queuedPayment('pk_poolwait_w9', 'poolwait');
    // The first confirm waits out its connection share and gives up before the guard runs, as
    // pg-client does on PG_POOL_WAIT_TIMEOUT_MS; the next one goes to the PG.
    let waits = 0;
    const pg: PgPort = Object.create(w.pg, {
      confirm: {
        value: (...args: Parameters<PgPort['confirm']>) => {
          if (waits++ > 0) return w.pg.confirm(...args);
          const raw = { transport: 'not_sent', reason: 'pool_wait_timeout' } as const;
          const report: CallReport = {
            call: 'confirm', transport: 'not_sent', httpStatus: null, outcome: 'not_sent', pgFailed: false,
            latencyMs: 0, sentAtMs: null, gateWaitMs: 0, holdMs: 0, timeoutMs: 0, paymentId: null, idempotencyKey: null,
          };
          return Promise.resolve({ refused: false, outcome: classify('confirm', raw), raw, report });
        },
      },
    });
    const driver = new PaymentDriver({ pg, store: w.store, transitions: w.transitions, policy: resolutionPolicyOf(w.config), log: w.log });

    const first = await driver.step(id, 'confirm', 0);
    expect(first.kind).toBe('again');
    expect((await w.store.get(id))!.phase).toBe('queued');
    const second = await driver.step(id, 'confirm', 1);
    expect(second).toEqual({ kind: 'done', phase: 'final' });
    expect((await w.store.get(id))!.status).toBe('APPROVED');
    expect(h.ledger()['pk_poolwait_w9']).toMatchObject({ status: 'DONE', chargeCount: 1, confirmArrivals: 1 });
  });
});

describe('a job BullMQ gave up on', () => {
  it('is revived by the sweeper with its attempts reset, so it gets its retries and backoff again', async () => {
    const w = h.worker;
    const id = await queuedPayment('pk_revive_w11', 'revive');
    const confirmWorker = w.workers[0]!;
    await confirmWorker.pause();
    // A stand-in worker whose every run fails, with one attempt allowed: the job fails for good.
    const failing = new Worker(w.queues.confirm.name, async () => Promise.reject(new Error('a Redis blip')), {
      connection: w.queues.confirm.opts.connection, prefix: w.config.REDIS_PREFIX,
    });
    try {
      await w.queues.confirm.add('confirm', { paymentId: id }, { jobId: id, attempts: 1 });
      await expect.poll(async () => w.queues.confirm.getJobState(id), { timeout: 10_000 }).toBe('failed');
    } finally {
      await failing.close();
    }
    expect((await w.queues.confirm.getJob(id))!.attemptsMade).toBe(1);

    expect(await w.sweeper.ensureLiveJob(id)).toBe(true);
    const revived = await w.queues.confirm.getJob(id);
    expect(revived!.attemptsMade).toBe(0);
    expect(await revived!.getState()).toBe('waiting');

    confirmWorker.resume();
    const [rec] = await h.settle([id]);
    expect(rec!.status).toBe('APPROVED');
    expect(h.ledger()['pk_revive_w11']).toMatchObject({ status: 'DONE', chargeCount: 1 });
  });
});
