/**
 * Admission: every worker process tops the payments admitted and not yet sent up to the lead
 * (ADMIT_LEAD_MS of the PG's rate), taking them from the merchants' fair queues by turns
 * (the store's `FairShare.admit`, one Lua script), and starts their first sends here
 * (first-sends.ts), at most as many as it has room for.
 *
 * Why a lead and not the whole backlog: whatever is admitted is served before a payment that
 * arrives later, so only a short lead is admitted, and a merchant arriving behind another's flood
 * waits about the lead, not the flood. The lead must cover what passes between two admissions
 * (ADMIT_TICK_MS), or the gate's waiters run dry and the PG's budget goes unused; 300 ms at
 * 500/s is 150 payments (400 ms measured no better for the budget and let the small merchant's
 * p99 reach 1.17 s on a loaded box).
 *
 * Nothing here is owned for long by a process: any live worker's admission serves every
 * merchant, and a dead one's admitted payments keep their outbox markers, which stop being
 * renewed; the sweeper turns markers past its grace into confirm jobs for any worker to run.
 */
import type { FairShare } from '@sluice/store';
import type { Logger } from 'pino';
import type { FirstSends } from './first-sends.ts';

/** What admission needs: the fair queues, who sends what is admitted, and how much to keep admitted. */
export interface AdmitterOptions {
  /** Each payment shard's fair queues and outbox (one with REDIS_SHARDS=1). */
  shards: { fair: FairShare; outboxKey: string }[];
  /** Drives what this process admitted to its first answer, under the outbox markers. */
  sends: Pick<FirstSends, 'room' | 'take'>;
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

  /** Stops the loop once its current admission has handed its payments on. */
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
    // No more than this process has room for: what it admits, it sends.
    const max = Math.min(lead, Math.floor(this.o.sends.room() / this.o.shards.length));
    if (max === 0) return 0;
    const admitted = await Promise.all(this.o.shards.map(async ({ fair, outboxKey }) => ({ outboxKey, paymentIds: await fair.admit(lead, max, this.o.staleMs) })));
    for (const { outboxKey, paymentIds } of admitted) this.o.sends.take(outboxKey, paymentIds);
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
        // queues; admitted ones keep their outbox markers until their first send has ended).
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
