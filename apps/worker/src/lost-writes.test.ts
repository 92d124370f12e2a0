/**
 * A failover that loses the last writes (replication is asynchronous): Redis comes back as it was
 * a moment before, with the payment not yet sent and waiting for admission, although the PG already
 * charged the card and Sluice had shown it APPROVED. It is admitted and sent again; the phase guard lets the
 * confirm out again with the payment's one Idempotency-Key, and the PG answers with its stored
 * answer instead of charging twice. The final state is the PG's: for an approval, a decline, and
 * an approval Sluice first learnt by inquiry (its answer came after the read timeout).
 *
 * The lost writes are made real: every key under the worker's prefix is dumped while the payment
 * waits (admission stopped), and restored, all of it, after the payment is final.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startHarness, type Harness } from './test-harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

async function snapshot(redis: Redis, prefix: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const key of await redis.keys(`${prefix}:*`)) {
    const dump = await redis.dumpBuffer(key);
    if (dump) out.set(key, dump);
  }
  return out;
}

async function restore(redis: Redis, prefix: string, snap: Map<string, Buffer>): Promise<void> {
  const now = await redis.keys(`${prefix}:*`);
  const gone = now.filter((k) => !snap.has(k));
  const multi = redis.multi();
  if (gone.length) multi.del(...gone);
  for (const [key, dump] of snap) multi.restore(key, 0, dump, 'REPLACE');
  await multi.exec();
}

/** Drives one payment to final with its writes then lost, and returns both finals and the PG's record. */
async function loseWritesOf(paymentKey: string) {
  const redis = h.worker.redis;
  const prefix = h.config.REDIS_PREFIX;
  // Admission stopped: the payment waits in its merchant's queue, not yet sent, as the replica
  // last got it.
  await h.worker.admitter.stop();
  const id = await h.pay(paymentKey, 4_200);
  expect(await h.worker.fairs[0]!.awaitingAdmission((await h.worker.store.get(id))!)).toBe(true);
  expect((await h.worker.store.get(id))!.status).toBe('QUEUED');
  const snap = await snapshot(redis, prefix);

  h.worker.admitter.start();
  const [first] = await h.settle([id]);
  const pgBefore = { ...h.ledger()[paymentKey]! };

  // The failover: every write since the snapshot is gone.
  await restore(redis, prefix, snap);
  expect((await h.worker.store.get(id))!.status).toBe('QUEUED');
  const [again] = await h.settle([id], 30_000);
  return { first: first!, again: again!, pgBefore, pgAfter: h.ledger()[paymentKey]! };
}

describe('a failover that loses the last writes', () => {
  it('sends the confirm again with the same key, and the PG answers without a second charge', async () => {
    const { first, again, pgBefore, pgAfter } = await loseWritesOf('pk_lost_write_1');
    expect(first.status).toBe('APPROVED');
    expect(pgBefore).toMatchObject({ status: 'DONE', chargeCount: 1, confirmArrivals: 1 });
    expect(again.status).toBe('APPROVED');
    expect(again.transactionKey).toBe(first.transactionKey);
    // The confirm went out twice, under one Idempotency-Key, and charged once.
    expect(pgAfter).toMatchObject({ status: 'DONE', chargeCount: 1, confirmArrivals: 2, confirmKeys: 1 });
  });

  it('a declined payment ends declined again: the PG replays its answer', async () => {
    const { first, again, pgAfter } = await loseWritesOf('sim_decline_lost_write_2');
    expect(first.status).toBe('DECLINED');
    expect(again.status).toBe('DECLINED');
    expect(again.failure).toEqual(first.failure);
    expect(pgAfter).toMatchObject({ chargeCount: 0, confirmKeys: 1 });
  });

  it('an approval first learnt by inquiry (its answer came after the read timeout) ends approved again, charged once', async () => {
    const { first, again, pgBefore, pgAfter } = await loseWritesOf('sim_late_lost_write_3');
    expect(first.status).toBe('APPROVED');
    expect(pgBefore).toMatchObject({ status: 'DONE', chargeCount: 1 });
    expect(again.status).toBe('APPROVED');
    expect(pgAfter).toMatchObject({ status: 'DONE', chargeCount: 1, confirmKeys: 1 });
  });
});
