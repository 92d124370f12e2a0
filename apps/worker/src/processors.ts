/**
 * The BullMQ side: turns the driver's `Next` into job moves. The PG's answers never throw here;
 * only infrastructure errors do, and BullMQ's attempts/backoff retry those.
 */
import { DelayedError, Worker, type Job, type Queue } from 'bullmq';
import { resolveJobId, type ConfirmJob, type ResolveJob } from '@sluice/queue';
import type { Logger } from 'pino';
import type { Next, PaymentDriver } from './driver.ts';

interface Retrying {
  retries?: number;
}

/** What the BullMQ processors need: the driver, the resolve queue, the breaker's probe interval and a logger. */
export interface ProcessorDeps {
  driver: PaymentDriver;
  resolveQueue: Queue<ResolveJob>;
  probeIntervalMs: number;
  log: Logger;
}

/** Adds (or re-drives) the payment's resolve job. Its id makes a second add a no-op. */
export async function startResolving(queue: Queue<ResolveJob>, paymentId: string, delayMs: number): Promise<void> {
  await queue.add('resolve', { paymentId }, { jobId: resolveJobId(paymentId), delay: delayMs });
}

async function delay(job: Job, token: string | undefined, ms: number, retries: number): Promise<never> {
  await job.updateData({ ...(job.data as object), retries });
  await job.moveToDelayed(Date.now() + ms, token);
  throw new DelayedError();
}

/** The confirm queue's processor: sends the first confirm, and hands anything unclear to resolve. */
export function confirmProcessor(deps: ProcessorDeps, worker: () => Worker) {
  return async (job: Job<ConfirmJob & Retrying>, token?: string): Promise<string> => {
    const retries = job.data.retries ?? 0;
    const next: Next = await deps.driver.step(job.data.paymentId, 'confirm', retries);
    switch (next.kind) {
      case 'done':
        return next.phase;
      case 'resolve':
        await startResolving(deps.resolveQueue, job.data.paymentId, next.delayMs);
        return 'resolving';
      case 'again':
        return delay(job, token, next.delayMs, retries + 1);
      case 'breaker':
        // The PG is failing: hold the whole confirm queue back for a probe interval. The job goes
        // back to waiting; the payment stays QUEUED (or PROCESSING if it was sent before).
        await worker().rateLimit(deps.probeIntervalMs);
        throw Worker.RateLimitError();
    }
  };
}

/** The resolve queue's processor: inquiries, re-confirms and cancels until the payment is final. */
export function resolveProcessor(deps: ProcessorDeps) {
  return async (job: Job<ResolveJob & Retrying>, token?: string): Promise<string> => {
    let retries = job.data.retries ?? 0;
    // A few immediate steps (inquiry → re-confirm, inquiry → cancel) in one go; waits are delays.
    for (let i = 0; i < 4; i++) {
      const next = await deps.driver.step(job.data.paymentId, 'resolve', retries);
      switch (next.kind) {
        case 'done':
          if (next.phase === 'queued') return 'queued';
          return next.phase;
        case 'resolve':
          if (next.delayMs > 0) return delay(job, token, next.delayMs, retries + 1);
          retries = 0;
          continue;
        case 'again':
          return delay(job, token, next.delayMs, retries + 1);
        case 'breaker':
          // Open breaker: about one inquiry per probe interval goes through, globally. The rest
          // wait a little longer each, spread out so they do not all knock at once.
          return delay(job, token, deps.probeIntervalMs * (1 + Math.random() * 2), retries);
      }
    }
    return delay(job, token, 0, retries);
  };
}
