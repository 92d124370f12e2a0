/**
 * The sweeper: the safety net under admission's outbox and under BullMQ.
 *
 * 1. Outbox: a payment admitted from its merchant's fair queue whose marker has aged past the
 *    grace (the worker driving its first send died, or stalled, first-sends.ts) gets a confirm
 *    job. The job id is the payment id, so a second add is a no-op.
 * 2. Live jobs: every payment that is not final must have a live job (waiting, delayed, active or
 *    prioritized), unless it is still waiting in its merchant's fair queue (it needs none until
 *    admitted). A job can vanish (failed after its attempts, stalled too often, cleaned from the
 *    dashboard). A payment that was never sent gets its confirm job back; one that may have been
 *    sent goes to inquiry first, never straight to another confirm.
 * 3. Claims (several payment shards): claims intake took at the root for a payment its shard
 *    never wrote (the API died between the two steps) are fenced and released (store/claims.ts).
 *
 * Each payment shard's outbox and backlog are swept in turn.
 */
import { DEFAULT_PROVIDER } from '@sluice/config';
import { confirmJobId, enqueueConfirms, LIVE_JOB_STATES as ALIVE, resolveJobId, reviveJob, type Queues } from '@sluice/queue';
import { redisNowMs, shardOfPaymentId, type FairShare, type Keys, type PaymentStore, type Transitions } from '@sluice/store';
import type { Logger } from 'pino';
import { OUTBOX_LEASE_MS } from './first-sends.ts';
import { startResolving } from './processors.ts';

/** What one sweep found and did. */
export interface SweepReport {
  outboxEnqueued: number;
  checked: number;
  redriven: number;
  /** Claims released whose payment never appeared (several shards). */
  claimsReleased: number;
}

/** How often and how far back the sweeper looks. */
export interface SweeperOptions {
  /** Outbox markers younger than this are left to the worker whose first send renews them. */
  outboxGraceMs: number;
  /** Payments younger than this are not checked for a live job. */
  liveGraceMs: number;
  /** Payments checked per sweep (the cursor walks the whole backlog over several sweeps). */
  chunk: number;
  /**
   * Claims older than this whose payment is not in its shard are fenced and released: far past
   * the moment between intake's two steps (the fence keeps a later step from creating it anyway).
   */
  claimGraceMs: number;
}

/** One provider's side, as the sweeper needs it: its keys (its outboxes), fair queues (one per shard), transitions and queues. */
export interface SweptProvider {
  keys: Keys;
  fairs: readonly FairShare[];
  transitions: Transitions;
  queues: Pick<Queues, 'confirm' | 'resolve'>;
}

/** What the sweeper reads and re-drives payments through: the store, and each provider's side by id. */
export interface SweeperDeps {
  store: PaymentStore;
  providers: ReadonlyMap<string, SweptProvider>;
  log: Logger;
}

/** Finds payments without a live job (an outbox entry never enqueued, a job lost or failed for good) and re-drives them. */
export class Sweeper {
  /** Where the live-job walk is in each shard's backlog. */
  private readonly cursors: number[];

  private readonly store: PaymentStore;
  private readonly providers: ReadonlyMap<string, SweptProvider>;
  private readonly log: Logger;
  private readonly o: SweeperOptions;

  constructor(d: SweeperDeps, o: SweeperOptions = { outboxGraceMs: OUTBOX_LEASE_MS, liveGraceMs: 30_000, chunk: 500, claimGraceMs: 60_000 }) {
    this.store = d.store;
    this.cursors = d.store.keys.shards.map(() => 0);
    this.providers = d.providers;
    this.log = d.log;
    this.o = o;
  }

  async sweep(now = Date.now()): Promise<SweepReport> {
    const claimsReleased = (await this.store.claims?.sweep(now, this.o.claimGraceMs)) ?? 0;
    const outboxEnqueued = await this.sweepOutbox();
    let checked = 0;
    let redriven = 0;
    for (const [n, k] of this.store.keys.shards.entries()) {
      const one = await this.sweepLiveJobs(now, n, k);
      checked += one.checked;
      redriven += one.redriven;
    }
    if (outboxEnqueued || redriven) this.log.warn({ alert: true, outboxEnqueued, redriven }, 'sweeper re-drove payments');
    if (claimsReleased) this.log.warn({ alert: true, claimsReleased }, 'sweeper released the claims of payments never written');
    return { outboxEnqueued, checked, redriven, claimsReleased };
  }

  private async sweepOutbox(): Promise<number> {
    const r = this.store.redis;
    // Markers are written and renewed on Redis's clock (admit.lua, renew-outbox.lua).
    const now = await redisNowMs(r);
    let n = 0;
    for (const side of this.providers.values()) {
      for (const k of side.keys.shards) {
        const ids = await r.zrangebyscore(k.outbox, '-inf', now - this.o.outboxGraceMs, 'LIMIT', 0, 1_000);
        await enqueueConfirms(side.queues.confirm, r, k.outbox, ids);
        n += ids.length;
      }
    }
    return n;
  }

  private async sweepLiveJobs(now: number, shard: number, k: Keys): Promise<{ checked: number; redriven: number }> {
    const r = this.store.redis;
    let ids = await r.zrange(k.open, this.cursors[shard]!, this.cursors[shard]! + this.o.chunk - 1, 'WITHSCORES');
    if (ids.length === 0 && this.cursors[shard]! > 0) {
      this.cursors[shard] = 0;
      ids = await r.zrange(k.open, 0, this.o.chunk - 1, 'WITHSCORES');
    }
    this.cursors[shard] = this.cursors[shard]! + ids.length / 2;
    let checked = 0;
    let redriven = 0;
    for (let i = 0; i < ids.length; i += 2) {
      const id = ids[i]!;
      if (Number(ids[i + 1]) > now - this.o.liveGraceMs) continue;
      checked++;
      if (await this.ensureLiveJob(id)) redriven++;
    }
    return { checked, redriven };
  }

  /** Returns true when the payment had no live job and got one again. */
  async ensureLiveJob(id: string): Promise<boolean> {
    const rec = await this.store.get(id);
    if (!rec || rec.phase === 'final') {
      if (!rec) await this.store.redis.zrem(this.store.keys.shardOf(id).open, id);
      return false;
    }
    const side = this.providers.get(rec.provider ?? DEFAULT_PROVIDER);
    if (!side) {
      // Its provider is not configured here (taken out of PROVIDERS while it had payments): a
      // worker that has it drives it; nothing here can.
      this.log.warn({ alert: true, paymentId: id, provider: rec.provider }, 'payment of a provider this worker does not have');
      return false;
    }
    // Admitted and in flight in a worker's first sends (its outbox marker is the lease): that
    // worker drives it, or the outbox sweep does once the marker has aged.
    if ((await this.store.redis.zscore(side.keys.shardOf(id).outbox, id)) !== null) return false;
    const { confirm, resolve } = side.queues;
    if (rec.phase === 'queued') {
      // Still in its merchant's fair queue: admission adds its job, in its turn.
      if (await (side.fairs[shardOfPaymentId(id)] ?? side.fairs[0]!).awaitingAdmission(rec)) return false;
      return reviveJob(confirm, confirmJobId(id), () => confirm.add('confirm', { paymentId: id }, { jobId: confirmJobId(id) }).then(() => undefined));
    }
    const resolveAlive = ALIVE.has(await resolve.getJobState(resolveJobId(id)));
    if (rec.phase === 'confirming') {
      const confirmAlive = ALIVE.has(await confirm.getJobState(confirmJobId(id)));
      if (confirmAlive || resolveAlive) return false;
      // It may have been sent: learn the PG's state by inquiry before anything else.
      await side.transitions.apply({ paymentId: id, expected: 'confirming', step: { do: 'inquire', delayMs: 0, answered: false }, event: { call: 'sweeper', step: 'inquire' } });
    } else if (resolveAlive) return false;
    return reviveJob(resolve, resolveJobId(id), () => startResolving(resolve, id, 0));
  }
}
