/**
 * Adds the confirm jobs of admitted payments that nobody drives. Intake puts a payment in its
 * merchant's fair queue; a worker admits it (the store's `FairShare.admit`, which writes an outbox
 * marker in the same step) and sends it under that marker (apps/worker/src/first-sends.ts); the
 * sweeper adds here the jobs of markers left to age (their worker died).
 *
 * Safety: the marker is cleared only once the job exists. If the process dies between the two,
 * the sweeper finds the marker and adds the job again; the job id is the payment id, so a double
 * add is a no-op.
 */
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { confirmJobId, type ConfirmJob } from './catalog.ts';

/** Adds one confirm job per payment id (one `addBulk`), then clears their outbox markers (one `ZREM`). */
export async function enqueueConfirms(queue: Queue<ConfirmJob>, redis: Redis, outboxKey: string, paymentIds: string[]): Promise<void> {
  if (paymentIds.length === 0) return;
  await queue.addBulk(paymentIds.map((paymentId) => ({ name: 'confirm', data: { paymentId }, opts: { jobId: confirmJobId(paymentId) } })));
  await redis.zrem(outboxKey, ...paymentIds);
}

/** The job states in which a job will still run. */
export const LIVE_JOB_STATES: ReadonlySet<string> = new Set(['waiting', 'delayed', 'active', 'prioritized', 'waiting-children']);

/**
 * Makes sure the job `jobId` will run: a live one is left alone, a failed one is retried with its
 * attempts reset (rather than failing for good again at its next error, in a loop), and one that
 * ended otherwise (completed, or missing) is removed and added anew with `add` (an add under an
 * id that still exists would be a no-op). Returns whether a job was retried or added.
 */
export async function reviveJob(queue: Queue, jobId: string, add: () => Promise<void>): Promise<boolean> {
  const job = (await queue.getJob(jobId)) as Job | undefined;
  if (job) {
    const state = await job.getState();
    if (LIVE_JOB_STATES.has(state)) return false;
    if (state === 'failed') {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return true;
    }
    await job.remove();
  }
  await add();
  return true;
}
