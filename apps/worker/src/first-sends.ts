/**
 * First sends: the payments this process admitted are driven to their first answer here, not
 * through a BullMQ job each. Admission's outbox marker is the lease: while a payment is in
 * flight here its marker is renewed; once its step has ended and whatever comes next exists (a
 * resolve job, a confirm job for a retry), the marker is cleared. A process that dies leaves its
 * markers to age, and the sweeper (sweeper.ts) turns every marker older than its grace into a
 * confirm job, as it always did for a worker that died between admitting and enqueueing.
 *
 * Why: a BullMQ job per payment cost three scripts (the add, `moveToActive`, `moveToFinished`),
 * its lock renewals and their events: a third of Redis's commands per payment, and a third of
 * the worker's main thread (docs/perf.md, "The first send without a job"). Everything after the
 * first answer that waits (a retry's backoff, a breaker's probe interval, an answer in doubt)
 * still goes to BullMQ, whose delays, retries and takeover carry it as before.
 *
 * Safety: a payment is stepped twice only if its lease lapsed while it was in flight (this
 * process stalled past the sweeper's grace) and the sweeper's job ran beside it: as with a
 * stalled BullMQ job, the phase guard and the payment's one PG key keep that from charging twice.
 */
import { confirmJobId, RETRY_BACKOFF, reviveJob, type ConfirmJob, type ResolveJob } from '@sluice/queue';
import { OutboxLeases, type Redis } from '@sluice/store';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { PaymentDriver } from './driver.ts';
import { startResolving } from './processors.ts';

/**
 * How old an outbox marker must be before the sweeper takes it for a payment nobody drives: its
 * worker renews it every third of this while the payment is in flight, well within it.
 */
export const OUTBOX_LEASE_MS = 3_000;

/** What first sends need. */
export interface FirstSendsOptions {
  driver: PaymentDriver;
  redis: Redis;
  confirmQueue: Queue<ConfirmJob>;
  resolveQueue: Queue<ResolveJob>;
  /** The most payments in flight here at once (the confirm worker's concurrency). */
  concurrency: number;
  /** How long a confirm held back by the open breaker waits (BREAKER_PROBE_INTERVAL_MS). */
  probeIntervalMs: number;
  log: Logger;
}

/** Drives admitted payments to their first answer under their outbox markers. */
export class FirstSends {
  /** Payments in flight here, by id, with their outbox. */
  private readonly inFlight = new Map<string, string>();
  /** Markers to clear, by outbox, at the end of this turn. */
  private readonly ended = new Map<string, string[]>();
  private flushing: Promise<void> | null = null;
  private lastFlush: Promise<void> = Promise.resolve();
  private readonly renewTimer: NodeJS.Timeout;
  private idle: (() => void) | null = null;
  private readonly leases: OutboxLeases;

  constructor(private readonly o: FirstSendsOptions) {
    this.leases = new OutboxLeases(o.redis);
    this.renewTimer = setInterval(() => void this.renew().catch(() => undefined), OUTBOX_LEASE_MS / 3);
    this.renewTimer.unref();
  }

  /** How many more payments this process can take now. */
  room(): number {
    return Math.max(0, this.o.concurrency - this.inFlight.size);
  }

  /** How many payments are in flight here now. */
  size(): number {
    return this.inFlight.size;
  }

  /** The payments in flight here now. */
  inFlightIds(): string[] {
    return [...this.inFlight.keys()];
  }

  /** Starts the admitted payments of one outbox. */
  take(outboxKey: string, paymentIds: readonly string[]): void {
    for (const id of paymentIds) {
      if (this.inFlight.has(id)) continue;
      this.inFlight.set(id, outboxKey);
      void this.run(id, outboxKey);
    }
  }

  /** Resolves once nothing is in flight here (used at shutdown, within the grace period). */
  async drained(): Promise<void> {
    while (this.inFlight.size > 0) await new Promise<void>((r) => (this.idle = r));
    await (this.flushing ?? this.lastFlush);
  }

  /** Stops renewing: what is still in flight is left to its markers (the sweeper's, after its grace). */
  close(): void {
    clearInterval(this.renewTimer);
  }

  private async run(id: string, outboxKey: string): Promise<void> {
    let handedOn = true;
    try {
      const next = await this.o.driver.step(id, 'confirm', 0);
      switch (next.kind) {
        case 'done':
          break;
        case 'resolve':
          await startResolving(this.o.resolveQueue, id, next.delayMs);
          break;
        case 'again':
          await this.toQueue(id, next.delayMs, 1);
          break;
        case 'breaker':
          // Held back before it was sent: it waits a probe interval in the confirm queue, where
          // the queue's processor holds the whole queue back while the breaker stays open.
          await this.toQueue(id, this.o.probeIntervalMs, 0);
          break;
      }
    } catch (err) {
      // An infrastructure error (Redis, the sender thread): the confirm queue retries it, as it
      // would have retried the job. If even that fails, the marker stays and the sweeper does it.
      this.o.log.warn({ paymentId: id, err: err instanceof Error ? err.message : String(err) }, 'first send failed; the confirm queue retries it');
      handedOn = await this.toQueue(id, RETRY_BACKOFF.baseMs, 1).then(() => true, () => false);
    }
    this.inFlight.delete(id);
    if (handedOn) this.end(outboxKey, id);
    if (this.inFlight.size === 0) this.idle?.();
  }

  /** Hands the payment to the confirm queue: a job of its own, delayed, revived if an old one ended. */
  private async toQueue(id: string, delayMs: number, retries: number): Promise<void> {
    const { confirmQueue: q } = this.o;
    await reviveJob(q, confirmJobId(id), () => q.add('confirm', { paymentId: id, retries } as ConfirmJob, { jobId: confirmJobId(id), delay: delayMs }).then(() => undefined));
  }

  /** Clears the marker with the others of this turn (one ZREM per outbox). */
  private end(outboxKey: string, id: string): void {
    const list = this.ended.get(outboxKey);
    if (list) list.push(id);
    else this.ended.set(outboxKey, [id]);
    this.flushing ??= new Promise<void>((r) => setImmediate(r)).then(() => (this.lastFlush = this.flush()));
  }

  private async flush(): Promise<void> {
    const batches = [...this.ended];
    this.ended.clear();
    this.flushing = null;
    // A marker not cleared (Redis away) ages, and the sweeper adds a job for a payment that is
    // final or handed on: that job finds nothing to do.
    await Promise.all(batches.map(([key, ids]) => this.o.redis.zrem(key, ...ids))).catch((err: unknown) =>
      this.o.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'outbox markers not cleared; the sweeper finds them done'),
    );
  }

  /** Renews the markers of the payments in flight here (one script per outbox, on Redis's clock). */
  private async renew(): Promise<void> {
    if (this.inFlight.size === 0) return;
    const byOutbox = new Map<string, string[]>();
    for (const [id, key] of this.inFlight) {
      const ids = byOutbox.get(key);
      if (ids) ids.push(id);
      else byOutbox.set(key, [id]);
    }
    // A renewal lost (Redis away) lets a lease lapse: the sweeper's job and this send may then
    // both run the payment, which its phase guard and its one PG key keep safe.
    await Promise.all([...byOutbox].map(([key, ids]) => this.leases.renew(key, ids))).catch(() => undefined);
  }
}
