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
  if (paymentIds.length === 0) return;
  await queue.addBulk(paymentIds.map((paymentId) => ({ name: 'confirm', data: { paymentId }, opts: { jobId: confirmJobId(paymentId) } })));
  await redis.zrem(outboxKey, ...paymentIds);
}
