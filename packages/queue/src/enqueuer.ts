/**
 * Enqueues confirm jobs for new payments in small batches (one `addBulk` and one `ZREM` of the
 * outbox per batch), so that the intake's hot path costs one Redis round trip per POST.
 *
 * Safety: the payment and its outbox marker were written atomically before the 202. If this
 * process dies before the batch is flushed, the sweeper finds the marker and enqueues the job
 * (job id = payment id, so a double add is a no-op).
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { confirmJobId, type ConfirmJob } from './catalog.ts';

/** The most jobs in one `addBulk`. */
export const ENQUEUE_MAX_BATCH = 200;

/**
 * How long a job waits for others to share its batch. BullMQ's cost per job falls steeply with
 * the batch (measured over a local Redis: ~70 µs of API CPU and ~33 µs of Redis CPU per job in
 * batches of 5, ~36 µs and ~25 µs in batches of 20, ~28 µs and ~23 µs in batches of 50). A 2 ms
 * linger allows batches of ~5 at 2,500 payments/s; 20 ms gave ~60 at the intake's saturation
 * (8,043 jobs in 136 batches, apps/api/perf/intake-load.ts). A payment's job exists at most
 * 20 ms later, which nothing waits on (its PG call waits for the backlog ahead of it and a gate
 * slot, and the sweeper only looks at markers seconds old).
 */
export const ENQUEUE_LINGER_MS = 20;

/** Where the enqueuer adds jobs and clears outbox markers, its batch bounds, and who hears of a failed batch. */
export interface EnqueuerOptions {
  queue: Queue<ConfirmJob>;
  /** The connection that removes outbox markers. */
  redis: Redis;
  outboxKey: string;
  maxBatch?: number;
  lingerMs?: number;
  /** A batch that could not be added: the outbox sweeper enqueues its payments later. */
  onError?: (err: unknown) => void;
}

/** Adds confirm jobs in small batches, and takes a payment off the outbox once its job exists. */
export class ConfirmEnqueuer {
  private pending: ConfirmJob[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  private readonly queue: Queue<ConfirmJob>;
  private readonly redis: Redis;
  private readonly outboxKey: string;
  private readonly maxBatch: number;
  private readonly lingerMs: number;
  private readonly onError: (err: unknown) => void;

  constructor(o: EnqueuerOptions) {
    this.queue = o.queue;
    this.redis = o.redis;
    this.outboxKey = o.outboxKey;
    this.maxBatch = o.maxBatch ?? ENQUEUE_MAX_BATCH;
    this.lingerMs = o.lingerMs ?? ENQUEUE_LINGER_MS;
    this.onError = o.onError ?? (() => undefined);
  }

  /** Queues a confirm job for the payment; resolves nothing (the 202 does not wait for it). */
  push(job: ConfirmJob): void {
    this.pending.push(job);
    if (this.pending.length >= this.maxBatch) this.flushSoon(0);
    else this.flushSoon(this.lingerMs);
  }

  private flushSoon(ms: number): void {
    if (this.timer && ms > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flushing = this.flushing.then(() => this.flushOnce());
    }, ms);
  }

  private async flushOnce(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    try {
      await this.queue.addBulk(batch.map((data) => ({ name: 'confirm', data, opts: { jobId: confirmJobId(data.paymentId) } })));
      await this.redis.zrem(this.outboxKey, ...batch.map((j) => j.paymentId));
    } catch (err) {
      // The outbox markers stay; the sweeper enqueues these payments.
      this.onError(err);
    }
  }

  /** Flushes everything pending (for shutdown and tests). */
  async drain(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.flushing = this.flushing.then(() => this.flushOnce());
    await this.flushing;
  }
}
