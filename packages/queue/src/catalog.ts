/**
 * The job catalog: queue names, job data, ids and retry policy, in one place.
 *
 * - `confirm`: one job per payment, id = payment id. The backlog lives here (FIFO).
 * - `resolve`: one job per payment in doubt, id = `<payment id>.resolve`. It inquires, re-confirms
 *   or cancels until the payment is final, delaying itself between steps. A separate queue, so
 *   that money in doubt never waits behind the backlog of new confirms.
 * - `maintenance`: repeatable jobs (outbox sweep, reconciliation).
 */
import { Queue, type AdvancedOptions, type ConnectionOptions, type JobsOptions } from 'bullmq';

/** The queues' names. */
export const QUEUE_NAMES = { confirm: 'confirm', resolve: 'resolve', maintenance: 'maintenance' } as const;

/** A confirm job's data. */
export interface ConfirmJob {
  paymentId: string;
  requestId?: string;
}
/** A resolve job's data. */
export interface ResolveJob {
  paymentId: string;
  requestId?: string;
}

/** A payment's confirm job id: the payment id, so that a second add is a no-op. */
export const confirmJobId = (paymentId: string): string => paymentId;
/** A payment's resolve job id. */
export const resolveJobId = (paymentId: string): string => `${paymentId}.resolve`;

/** Retry waits for infrastructure errors: 0.5 s doubling, capped at 30 s. */
export const RETRY_BACKOFF = { baseMs: 500, maxMs: 30_000 } as const;

/**
 * The workers' settings for {@link JOB_OPTIONS}' `capped` backoff. BullMQ's own exponential one has
 * no ceiling: by the 20th attempt a job would wait days, with its payment QUEUED all that time,
 * and "BullMQ gave up" (the failed handler re-drives the payment) would never come.
 */
export const WORKER_SETTINGS: AdvancedOptions = {
  backoffStrategy: (attemptsMade: number) => Math.min(RETRY_BACKOFF.maxMs, RETRY_BACKOFF.baseMs * 2 ** Math.max(0, attemptsMade - 1)),
};

/**
 * Job-level retries cover infrastructure errors only (Redis blips, a crash mid-step): the PG's
 * answers are handled inside the processor and never thrown. 50 attempts at most 30 s apart give
 * up after about 24 minutes. Completed jobs are removed after a bound so that Redis
 * (noeviction) does not grow: a few minutes or 2,000 jobs, enough to look at on the board (each
 * payment's whole history is in the books); failed ones are kept a week for operators, and the
 * sweeper re-drives their payments.
 */
export const JOB_OPTIONS: JobsOptions = {
  attempts: 50,
  backoff: { type: 'capped' },
  removeOnComplete: { age: 300, count: 2_000 },
  removeOnFail: { age: 7 * 24 * 3_600, count: 50_000 },
};

/** The three queues, and how to close them. */
export interface Queues {
  confirm: Queue<ConfirmJob>;
  resolve: Queue<ResolveJob>;
  maintenance: Queue;
  close(): Promise<void>;
}

/** Opens the three queues on a connection, under the key prefix. */
export function createQueues(connection: ConnectionOptions, prefix: string): Queues {
  const opts = { connection, prefix, defaultJobOptions: JOB_OPTIONS };
  const confirm = new Queue<ConfirmJob>(QUEUE_NAMES.confirm, opts);
  const resolve = new Queue<ResolveJob>(QUEUE_NAMES.resolve, opts);
  const maintenance = new Queue(QUEUE_NAMES.maintenance, { connection, prefix, defaultJobOptions: { removeOnComplete: 100, removeOnFail: 100 } });
  return {
    confirm,
    resolve,
    maintenance,
    close: async () => {
      await Promise.all([confirm.close(), resolve.close(), maintenance.close()]);
    },
  };
}

