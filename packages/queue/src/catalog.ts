/**
 * The job catalog: queue names, job data, ids and retry policy, in one place.
 *
 * - `confirm`: one job per payment, id = payment id. The backlog lives here (FIFO).
 * - `resolve`: one job per payment in doubt, id = `<payment id>.resolve`. It inquires, re-confirms
 *   or cancels until the payment is final, delaying itself between steps. A separate queue, so
 *   that money in doubt never waits behind the backlog of new confirms.
 * - `maintenance`: repeatable jobs (outbox sweep, reconciliation).
 * - `webhooks`: one job per event and endpoint, id = `<event id>.<endpoint id>`: a signed delivery,
 *   retried on the Standard Webhooks schedule. Apart from the PG's queues and budget.
 */
import { DEFAULT_PROVIDER, slotPrefix } from '@sluice/config';
import { Queue, type AdvancedOptions, type ConnectionOptions, type Job, type JobsOptions, type KeepJobs } from 'bullmq';

/** The queues' names (of the default provider; see {@link queueNamesOf}). */
export const QUEUE_NAMES = { confirm: 'confirm', resolve: 'resolve', maintenance: 'maintenance' } as const;

/**
 * A provider's queue names: each provider has its own confirm and resolve queues, drained by its
 * own BullMQ workers with their own concurrency, so that a PG that hangs can hold only its own
 * jobs. The default provider's are `confirm` and `resolve` as they always were; another's are
 * `confirm-<id>` and `resolve-<id>`. The maintenance queue is shared.
 */
export function queueNamesOf(provider: string): { confirm: string; resolve: string } {
  return provider === DEFAULT_PROVIDER
    ? { confirm: QUEUE_NAMES.confirm, resolve: QUEUE_NAMES.resolve }
    : { confirm: `${QUEUE_NAMES.confirm}-${provider}`, resolve: `${QUEUE_NAMES.resolve}-${provider}` };
}

/**
 * A confirm job's data: only the payment id. Everything else (the request id for the logs, the
 * amount, the keys) is in the payment's hash, so the job stays small (see {@link JOB_OPTIONS}).
 */
export interface ConfirmJob {
  paymentId: string;
}
/** A resolve job's data. */
export interface ResolveJob {
  paymentId: string;
}

/** A payment's confirm job id: the payment id, so that a second add is a no-op. */
export const confirmJobId = (paymentId: string): string => paymentId;
/** A payment's resolve job id. */
export const resolveJobId = (paymentId: string): string => `${paymentId}.resolve`;

/** Retry waits for infrastructure errors: 0.5 s doubling, capped at 30 s. */
export const RETRY_BACKOFF = { baseMs: 500, maxMs: 30_000 } as const;

/**
 * The workers' settings for the `capped` backoff ({@link retryPolicy}). BullMQ's own exponential
 * one has no ceiling: by the 20th attempt a job would wait days, with its payment QUEUED all that
 * time, and "BullMQ gave up" (the failed handler re-drives the payment) would never come.
 */
export const WORKER_SETTINGS: AdvancedOptions = {
  backoffStrategy: (attemptsMade: number) => Math.min(RETRY_BACKOFF.maxMs, RETRY_BACKOFF.baseMs * 2 ** Math.max(0, attemptsMade - 1)),
};

/**
 * Job-level retries cover infrastructure errors only (Redis blips, a crash mid-step): the PG's
 * answers are handled inside the processor and never thrown. 50 attempts at most 30 s apart give
 * up after about 24 minutes.
 *
 * What each job stores is kept to its attempts and id. BullMQ writes a job's options into its
 * hash as JSON, and Redis keeps a hash compact (a listpack) only while every value is at most
 * 64 bytes (`hash-max-listpack-value`): with the backoff and the removal rules in every job the
 * options were 190 bytes and a queued job's hash took 816 B of Redis memory, with only the id and
 * the attempts about 250 B. So the backoff is applied by the worker to the job it runs
 * ({@link retryPolicy}), and the removal rules are the workers' ({@link WORKER_KEEP_JOBS}).
 */
export const JOB_OPTIONS: JobsOptions = { attempts: 50 };

/** The backoff every confirm and resolve job retries with, set on the job when a worker runs it. */
export const JOB_BACKOFF = { type: 'capped' } as const;

/**
 * Wraps a processor so that the job it runs retries with {@link JOB_BACKOFF} (BullMQ reads the
 * backoff from the running job's options when the processor throws), and with
 * {@link JOB_OPTIONS}' attempts if the job has none of its own.
 */
export function retryPolicy<J extends Job, R>(processor: (job: J, token?: string) => Promise<R>): (job: J, token?: string) => Promise<R> {
  return (job, token) => {
    job.opts.attempts ??= JOB_OPTIONS.attempts;
    job.opts.backoff ??= { ...JOB_BACKOFF };
    return processor(job, token);
  };
}

/**
 * What the workers keep of finished confirm and resolve jobs: completed ones a few minutes or
 * 2,000 jobs, enough to look at on the board (each payment's whole history is in the books);
 * failed ones a week for operators (the sweeper re-drives their payments). Bounded either way,
 * so that Redis (noeviction) does not grow.
 */
export const WORKER_KEEP_JOBS: { removeOnComplete: KeepJobs; removeOnFail: KeepJobs } = {
  removeOnComplete: { age: 300, count: 2_000 },
  removeOnFail: { age: 7 * 24 * 3_600, count: 50_000 },
};

/** The events BullMQ keeps per queue (its `<queue>:events` stream). */
export const QUEUE_EVENTS_KEPT = 1_000;

/** A provider's three queues (the maintenance queue is shared), and how to close them. */
export interface Queues {
  confirm: Queue<ConfirmJob>;
  resolve: Queue<ResolveJob>;
  maintenance: Queue;
  close(): Promise<void>;
}

/**
 * The prefix of BullMQ's keys, from Sluice's REDIS_PREFIX. On one Redis it is that prefix. On a
 * Redis Cluster (REDIS_PREFIX `{T}`) the queues are `{T:queues}`: a slot of their own, so that
 * BullMQ's moves, a large part of Redis's work per payment, run on another primary than the
 * payments' scripts. Nothing joins the two in one step: a payment's job is added from the outbox
 * (enqueuer.ts) after the script that admitted it, and the sweeper finishes what a crash left.
 */
export function queuePrefixOf(prefix: string): string {
  return slotPrefix(prefix, 'queues');
}

/** Opens a provider's three queues (the default provider's unless given) on a connection, under Sluice's key prefix. */
export function createQueues(connection: ConnectionOptions, sluicePrefix: string, provider: string = DEFAULT_PROVIDER): Queues {
  const prefix = queuePrefixOf(sluicePrefix);
  // BullMQ appends an event per job move to `<queue>:events` for QueueEvents listeners, 10,000
  // by default (about 730 KB a queue). Sluice listens to none; 1,000 is left for an operator's
  // look with XRANGE.
  const opts = { connection, prefix, defaultJobOptions: JOB_OPTIONS, streams: { events: { maxLen: QUEUE_EVENTS_KEPT } } };
  const names = queueNamesOf(provider);
  const confirm = new Queue<ConfirmJob>(names.confirm, opts);
  const resolve = new Queue<ResolveJob>(names.resolve, opts);
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


/** The webhook deliveries' queue. */
export const WEBHOOK_QUEUE = 'webhooks';

/** A delivery: the event's body as signed and sent, to one endpoint. */
export interface DeliveryJob {
  eventId: string;
  endpointId: string;
  /** The JSON body (domain `webhookBody`), the same bytes on every try. */
  body: string;
  /** When the event happened (ms): the delivery's latency is counted from it. */
  createdAt: number;
}

/** A delivery's job id: one per event and endpoint, so an event read twice is delivered once per endpoint (a redelivery asked for adds a suffix). */
export const deliveryJobId = (eventId: string, endpointId: string, redelivery?: string): string =>
  redelivery ? `${eventId}.${endpointId}.${redelivery}` : `${eventId}.${endpointId}`;

/**
 * A delivery's job options: ten tries (the first and one per step of the Standard Webhooks
 * schedule, `@sluice/webhooks` DELIVERY_ATTEMPTS), waits from the worker's `custom` backoff.
 */
export const DELIVERY_JOB_OPTIONS = { attempts: 10, backoff: { type: 'custom' } } as const;

/** Opens the webhook deliveries' queue. Finished deliveries are kept briefly; failed ones a week. */
export function createWebhookQueue(connection: ConnectionOptions, sluicePrefix: string): Queue<DeliveryJob> {
  return new Queue<DeliveryJob>(WEBHOOK_QUEUE, {
    connection, prefix: queuePrefixOf(sluicePrefix), streams: { events: { maxLen: QUEUE_EVENTS_KEPT } },
    defaultJobOptions: { removeOnComplete: { age: 300, count: 2_000 }, removeOnFail: { age: 7 * 24 * 3_600, count: 50_000 } },
  });
}
