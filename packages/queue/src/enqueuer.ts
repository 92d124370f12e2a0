/**
 * Adds the confirm jobs of admitted payments. Intake puts a payment in its merchant's fair queue;
 * a worker admits it (the store's `FairShare.admit`, which writes an outbox marker in the same
 * step) and adds its job here; the sweeper adds the jobs of markers left behind.
 *
 * Safety: the marker is cleared only once the job exists. If the process dies between the two,
 * the sweeper finds the marker and adds the job again; the job id is the payment id, so a double
 * add is a no-op.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { confirmJobId, type ConfirmJob } from './catalog.ts';

/** Adds one confirm job per payment id (one `addBulk`), then clears their outbox markers (one `ZREM`). */
export async function enqueueConfirms(queue: Queue<ConfirmJob>, redis: Redis, outboxKey: string, paymentIds: string[]): Promise<void> {
  await enqueueConfirmsOf(queue, redis, [{ outboxKey, paymentIds }]);
}

/**
 * {@link enqueueConfirms} for the payments of several outboxes (one per payment shard): one
 * `addBulk` for all of them, then one `ZREM` per outbox (each outbox is in its shard's slot).
 */
export async function enqueueConfirmsOf(queue: Queue<ConfirmJob>, redis: Redis, outboxes: readonly { outboxKey: string; paymentIds: string[] }[]): Promise<void> {
  const all = outboxes.flatMap((o) => o.paymentIds);
  if (all.length === 0) return;
  await queue.addBulk(all.map((paymentId) => ({ name: 'confirm', data: { paymentId }, opts: { jobId: confirmJobId(paymentId) } })));
  await Promise.all(outboxes.filter((o) => o.paymentIds.length > 0).map((o) => redis.zrem(o.outboxKey, ...o.paymentIds)));
}
