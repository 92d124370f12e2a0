/**
 * REDIS_WAIT_REPLICAS in the worker, on a real primary and replica (redis-server processes on free
 * ports): a final state is on the replica before its job ends, and a cancel (a refund's, or the
 * void of a payment under way) goes to the PG only once the state that allows it is on the
 * replica. With the replica killed, each waits, nothing is sent that a failover could make Sluice
 * forget, and once it is back each ends once, as the PG's ledger shows.
 */
import { startRedisServer, type RedisServer } from '@sluice/test-support';
import { newCancelId, RefundStore, refundStoreOptionsOf } from '@sluice/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './test-harness.ts';

let primary: RedisServer;
let replica: RedisServer;
let h: Harness;
let refunds: RefundStore;

async function inSync(): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (/master_link_status:up/.test(await replica.client().info('replication').catch(() => ''))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the replica did not sync');
}

/** Cancels that reached the PG since `since` (its arrival log, every payment). */
function cancelArrivals(since: number): number {
  const { arrivals } = JSON.parse(h.sim.state.arrivals.toJson(since)) as { arrivals: [number, string, number][] };
  return arrivals.filter(([, code]) => code === 'x').length;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  primary = await startRedisServer();
  replica = await startRedisServer([['replicaof', '127.0.0.1', String(primary.port)]]);
  await inSync();
  // A long approval (3–4 s, past the 1 s read timeout) leaves a payment under way to be voided.
  h = await startHarness({ longApprovalMinMs: 3_000, longApprovalMaxMs: 4_000 }, { REDIS_URL: primary.url, REDIS_WAIT_REPLICAS: 1, REDIS_WAIT_TIMEOUT_MS: 300 });
  refunds = new RefundStore(h.worker.redis, refundStoreOptionsOf(h.config), h.config.PG_PROVIDER);
});
afterAll(async () => {
  await h?.close();
  await replica?.stop();
  await primary?.stop();
});

let n = 0;
const ask = (paymentId: string, amount: number | null) =>
  refunds.request({ paymentId, merchantId: 'm1', cancelId: newCancelId(), amount, reason: 'returned', idemKeyHash: `k-${++n}`, fingerprint: `f-${n}` });

describe('the worker with REDIS_WAIT_REPLICAS=1', () => {
  it('ends a final payment\'s job only once the replica holds the final state', async () => {
    const [ok] = await h.settle([await h.pay('pk_rep_final_1')]);
    expect(ok!.status).toBe('APPROVED');
    expect(await replica.client().hget(`${h.config.REDIS_PREFIX}:pay:${ok!.id}`, 'phase')).toBe('final');

    await replica.kill9();
    let id = '';
    try {
      id = await h.pay('pk_rep_final_2');
      const [rec] = await h.settle([id]);
      expect(rec!.status).toBe('APPROVED');
      // Final on the primary, but its job does not end while no replica confirms it.
      await sleep(1_500);
      expect(await h.worker.queues.confirm.getJobState(id)).not.toBe('completed');
    } finally {
      await replica.restart();
      await inSync();
    }
    await expect.poll(async () => h.worker.queues.confirm.getJobState(id), { timeout: 10_000 }).toBe('completed');
    expect(await replica.client().hget(`${h.config.REDIS_PREFIX}:pay:${id}`, 'phase')).toBe('final');
    // The job's re-runs asked the PG nothing: one confirm, one charge.
    expect(h.ledger()['pk_rep_final_2']).toMatchObject({ status: 'DONE', chargeCount: 1, confirmArrivals: 1 });
  });

  it('sends a refund\'s cancel only once its in-flight mark is on the replica, and refunds once', async () => {
    const [paid] = await h.settle([await h.pay('pk_rep_refund_1', 10_000)]);
    expect(paid!.status).toBe('APPROVED');
    await replica.kill9();
    const since = Date.now();
    try {
      expect((await ask(paid!.id, 2_000)).kind).toBe('ok');
      await sleep(2_500);
      const rec = await h.worker.store.get(paid!.id);
      // Not sent: the refund waits, PENDING, with no cancel in flight, and the PG saw none.
      expect(rec!.refunds).toMatchObject([{ kind: 'refund', status: 'PENDING', amount: 2_000 }]);
      expect(await h.worker.redis.hget(`${h.config.REDIS_PREFIX}:pay:${paid!.id}`, 'refundPhase')).toBe('');
      expect(cancelArrivals(since)).toBe(0);
      expect(h.sim.state.ledger.byPaymentKey('pk_rep_refund_1')!.cancels).toHaveLength(0);
    } finally {
      await replica.restart();
      await inSync();
    }
    await expect.poll(async () => (await h.worker.store.get(paid!.id))!.refunds[0]!.status, { timeout: 15_000 }).toBe('SUCCEEDED');
    expect(cancelArrivals(since)).toBe(1);
    expect(h.sim.state.ledger.byPaymentKey('pk_rep_refund_1')!.cancels).toMatchObject([{ cancelAmount: 2_000 }]);
  });

  it('voids a payment under way only once the decision to cancel is on the replica', async () => {
    const id = await h.pay('sim_long_rep_void_1', 7_000);
    // Under way at the PG, not only in Sluice: a void that reaches the confirm before it is sent
    // keeps it from being sent (the guard), and the PG then holds nothing to void.
    await expect.poll(() => h.sim.state.ledger.byPaymentKey('sim_long_rep_void_1')?.status, { timeout: 10_000, interval: 20 }).toBe('IN_PROGRESS');
    await replica.kill9();
    const since = Date.now();
    try {
      expect((await ask(id, null)).kind).toBe('ok');
      await sleep(3_000);
      expect(cancelArrivals(since)).toBe(0);
      expect((await h.worker.store.get(id))!.phase).not.toBe('final');
    } finally {
      await replica.restart();
      await inSync();
    }
    const [r] = await h.settle([id], 20_000);
    expect(r!.status).toBe('CANCELED');
    expect(r!.refunds).toMatchObject([{ kind: 'void', status: 'SUCCEEDED', amount: 7_000 }]);
    // The approval (3–4 s) may have ended while the cancel waited: then the PG charged and
    // returned the money. Either way once, and Sluice shows what the PG holds.
    const pg = h.ledger()['sim_long_rep_void_1']!;
    expect(pg.status).toBe('CANCELED');
    expect(pg.chargeCount).toBeLessThanOrEqual(1);
    expect(pg.refunded).toBe(pg.chargeCount === 1);
    expect(cancelArrivals(since)).toBeGreaterThanOrEqual(1);
  });
});
