/**
 * The job catalog: queue names, job data, ids and retry policy, in one place.
 *
 * - `confirm`: one job per payment, id = payment id. The backlog lives here (FIFO).
 * - `resolve`: one job per payment in doubt, id = `<payment id>.resolve`. It inquires, re-confirms
 *   or cancels until the payment is final, delaying itself between steps. A separate queue, so
 *   that money in doubt never waits behind the backlog of new confirms.
 * - `maintenance`: repeatable jobs (outbox sweep, reconciliation).
 */
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';

export const QUEUE_NAMES = { confirm: 'confirm', resolve: 'resolve', maintenance: 'maintenance' } as const;

export interface ConfirmJob {
  paymentId: string;
  requestId?: string;
}
export interface ResolveJob {
  paymentId: string;
  requestId?: string;
}

export const confirmJobId = (paymentId: string): string => paymentId;
export const resolveJobId = (paymentId: string): string => `${paymentId}.resolve`;

/**
 * Job-level retries cover infrastructure errors only (Redis blips, a crash mid-step): the PG's
 * answers are handled inside the processor and never thrown. Completed jobs are removed after a
 * bound so that Redis (noeviction) does not grow; failed ones are kept a week for operators, and
 * the sweeper re-drives their payments.
 */
export const JOB_OPTIONS: JobsOptions = {
  attempts: 50,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { age: 3_600, count: 20_000 },
  removeOnFail: { age: 7 * 24 * 3_600, count: 50_000 },
};

export interface Queues {
  confirm: Queue<ConfirmJob>;
  resolve: Queue<ResolveJob>;
  maintenance: Queue;
  close(): Promise<void>;
}

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

