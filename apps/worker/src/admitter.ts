/**
 * Admission: every worker process tops the payments admitted and not yet sent up to the lead
 * (ADMIT_LEAD_MS of the PG's rate), taking them from the merchants' fair queues by turns
 * (the store's `FairShare.admit`, one Lua script), and adds their confirm jobs.
 *
 * Why a lead and not the whole backlog: BullMQ's queue is first in, first out. Whatever is in it
 * is served before a payment that arrives later, so only a short lead goes in, and a merchant
 * arriving behind another's flood waits about the lead, not the flood. The lead must cover what
 * passes between two admissions (ADMIT_TICK_MS, the job's add and fetch), or the gate's
 * waiters run dry and the PG's budget goes unused; 300 ms at 500/s is 150 payments (400 ms measured
 * no better for the budget and let the small merchant's p99 reach 1.17 s on a loaded box).
 *
 * Nothing here is owned by a process: any live worker's admission serves every merchant, a
 * dead one's admitted payments are BullMQ jobs (taken over as BullMQ does), and one that died
 * between admitting and adding the jobs left outbox markers, which the sweeper turns into jobs.
 */
import { enqueueConfirmsOf, type ConfirmJob } from '@sluice/queue';
import type { FairShare, Redis } from '@sluice/store';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';

/** What admission needs: the fair queues, where jobs go, and how much to keep admitted. */
export interface AdmitterOptions {
  /** Each payment shard's fair queues and outbox (one with REDIS_SHARDS=1). */
  shards: { fair: FairShare; outboxKey: string }[];
  confirmQueue: Queue<ConfirmJob>;
  redis: Redis;
  /** The most payments admitted and not yet sent (config `admitLead`), over all shards. */
  lead: number;
  /** How long an admitted payment counts against the lead (config `admittedStaleMs`). */
  staleMs: number;
  /**
   * How often this process admits: ADMIT_TICK_MS × WORKER_PROCESSES (`admitTickMs`), so that the
   * processes together admit every ADMIT_TICK_MS, each at a random phase, whatever their count.
   */
  tickMs: number;
  log: Logger;
}

/** How long admission waits after a Redis error before it tries again. */
const ERROR_PAUSE_MS = 1_000;

/** Runs admission in a loop until stopped. */
export class Admitter {
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;
  private failing = false;
  /** Payments this process admitted (for metrics and tests). */
  admitted = 0;

  constructor(private readonly o: AdmitterOptions) {}

  /** Starts the loop (a no-op while it runs). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops the loop once its current admission has added its jobs. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  /**
   * One admission: each shard admits its part of the lead from its own merchants' queues, and
   * their jobs are added together. Returns how many.
   */
  async once(): Promise<number> {
    const lead = Math.ceil(this.o.lead / this.o.shards.length);
    const admitted = await Promise.all(this.o.shards.map(async ({ fair, outboxKey }) => ({ outboxKey, paymentIds: await fair.admit(lead, lead, this.o.staleMs) })));
    await enqueueConfirmsOf(this.o.confirmQueue, this.o.redis, admitted);
    const n = admitted.reduce((a, x) => a + x.paymentIds.length, 0);
    this.admitted += n;
    return n;
  }

  private async run(): Promise<void> {
    // A random phase, so that processes started together do not admit together.
    await this.sleep(Math.random() * this.o.tickMs);
    while (this.running) {
      let pause = this.o.tickMs;
      try {
        // A full lead admitted at once (a start, or a lead drained fast): look again at once. (Not
        // one shard's part of it: with many shards a part is a few payments, and looking again at
        // once would run every shard's admission back to back, for as few.)
        if ((await this.once()) >= this.o.lead) pause = 0;
        if (this.failing) this.o.log.info('admission works again');
        this.failing = false;
      } catch (err) {
        // Redis away: nothing can be admitted, and nothing is lost (payments stay in their
        // queues; admitted ones keep their outbox markers until their jobs exist).
        if (!this.failing) this.o.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'admission failed; trying again');
        this.failing = true;
        pause = ERROR_PAUSE_MS;
      }
      if (pause > 0) await this.sleep(pause);
    }
  }

  /** Waits `ms`, or less if stopped. */
  private async sleep(ms: number): Promise<void> {
    if (!this.running) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = null;
  }
}
