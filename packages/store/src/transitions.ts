/**
 * The worker's state changes: the phase guard before every PG call, the step applied after
 * every answer, and the breaker's record of each call. Each is one Lua script (see lua/).
 */
import type { FinalStatus, Phase, PgCall, Step } from '@sluice/domain';
import type { Redis } from 'ioredis';
import { lua } from './lua/index.ts';
import type { Config } from '@sluice/config';
import { breakerSettingsOf, readBreaker, type BreakerSettings, type BreakerState, type BreakerView } from './breaker.ts';
import type { Keys } from './keys.ts';

/** What the phase guard answered: send (with the payment's PG fields), or why not. */
export type GuardResult =
  | { ok: true; paymentKey: string; orderId: string; amount: number; attempts: number }
  | { ok: false; reason: 'phase'; phase: string }
  | { ok: false; reason: 'breaker'; state: string }
  | { ok: false; reason: 'expired' }
  | { ok: false; reason: 'missing' };

/** A PG call's phase guard: this payment, this call, only from these phases, moving to `to`. */
export interface GuardRequest {
  paymentId: string;
  call: Exclude<PgCall, 'transactions'>;
  allowed: readonly Phase[];
  to: Phase;
  /** The call already passed and took a later send slot: ask again, count and move nothing. */
  recheck?: boolean;
}

/** A decided step to apply to a payment if it is still in `expected`. */
export interface StepRequest {
  paymentId: string;
  expected: Phase;
  step: Step;
  /** The history entry (without its time). */
  event: Record<string, unknown>;
  /** The answer settles the confirm try it answers (domain `settlesTry`). */
  settlesConfirm?: boolean;
}

type ScriptRedis = Redis & {
  sluiceGuard(...a: (string | number)[]): Promise<string[]>;
  sluiceApplyStep(...a: (string | number)[]): Promise<string[]>;
  sluiceBreakerRecord(...a: (string | number)[]): Promise<string[]>;
};

/** One PG call's result, as the breaker and the PG chart count it. */
export interface CallRecord {
  call: PgCall;
  /** The outcome's class (domain `PgOutcome['kind']`). */
  outcome: string;
  /** Whether it tells the breaker the PG is failing (domain `isPgFailure`). */
  pgFailed: boolean;
  /** The PG's HTTP status when it answered: 429 and 503 are also counted for the alerts. */
  httpStatus?: number;
  /**
   * Where the call goes in the per-second PG chart: the Redis-clock ms its request was written
   * at, 'now' (the default) when that moment is unknown, or 'unsent' (it never reached the PG).
   */
  sent?: number | 'now' | 'unsent';
  /** For the books' record of the call: the payment it was for, its Idempotency-Key, its latency. */
  paymentId?: string | null;
  idempotencyKey?: string | null;
  latencyMs?: number;
}

/** What the state-changing scripts need beyond the keys. */
export interface TransitionsOptions {
  breaker: BreakerSettings;
  /** A payment still QUEUED past this age is not sent: FAILED EXPIRED_IN_QUEUE. */
  maxQueueAgeMs: number;
  /** How long a payment's history is kept. */
  retentionMs: number;
}

/** The transitions' options from the parsed config. */
export function transitionsOptionsOf(c: Config): TransitionsOptions {
  return { breaker: breakerSettingsOf(c), maxQueueAgeMs: c.QUEUE_MAX_AGE_MS, retentionMs: c.PAYMENT_RETENTION_MS };
}

/** How long a PG call's result waits for others to be recorded with it (ms). */
export const RECORD_BATCH_MS = 10;
/** The most results recorded in one script call. */
const RECORD_BATCH_MAX = 64;

/** The worker's state changes, each one Lua script: the phase guard, a step applied, a PG call recorded. */
export class Transitions {
  private readonly r: ScriptRedis;
  /** PG call results waiting to be recorded, and the timer that sends them. */
  private batch: { r: CallRecord; resolve: (s: BreakerState) => void; reject: (e: Error) => void }[] = [];
  private batchTimer: NodeJS.Timeout | null = null;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly o: TransitionsOptions,
  ) {
    if (!('sluiceGuard' in redis)) {
      redis.defineCommand('sluiceGuard', { numberOfKeys: 13, lua: lua('guard') });
      redis.defineCommand('sluiceApplyStep', { numberOfKeys: 10, lua: lua('apply-step') });
      redis.defineCommand('sluiceBreakerRecord', { numberOfKeys: 6, lua: lua('breaker-record') });
    }
    this.r = redis as ScriptRedis;
  }

  /**
   * The guard before a PG call: lets `call` go out only while the payment is in one of
   * `allowed`, moves it to `to`, and asks the breaker. Run after the permit, right before sending.
   * `recheck`: the call already passed and took a later send slot; the phase and the breaker are
   * asked again, and nothing is counted or moved.
   */
  async guard({ paymentId: id, call, allowed, to, recheck = false }: GuardRequest): Promise<GuardResult> {
    const k = this.keys.shardOf(id);
    const fair = k.fair(k.provider);
    const r = await this.r.sluiceGuard(
      k.payment(id), k.breaker, `${k.breaker}:probe`, k.breakerLog, k.open, k.counters, k.history(id),
      k.inDoubt, k.recentFailures, k.approved, k.finalRate, k.books, fair.admitted,
      call, allowed.join(','), to, this.o.breaker.probeIntervalMs, this.o.maxQueueAgeMs, id, recheck ? '1' : '0', k.finalChannel, fair.base,
    );
    switch (r[0]) {
      case 'ok':
        return { ok: true, paymentKey: r[1]!, orderId: r[2]!, amount: Number(r[3]), attempts: Number(r[4]) };
      case 'phase':
        return { ok: false, reason: 'phase', phase: r[1]! };
      case 'breaker':
        return { ok: false, reason: 'breaker', state: r[1]! };
      case 'expired':
        return { ok: false, reason: 'expired' };
      default:
        return { ok: false, reason: 'missing' };
    }
  }

  /**
   * Applies a decided step if the payment is still in `expected`. Returns the new phase, or
   * null when another step got there first (the caller then does nothing more).
   */
  async apply({ paymentId: id, expected, step, event, settlesConfirm = false }: StepRequest): Promise<Phase | null> {
    const k = this.keys.shardOf(id);
    const args: (string | number)[] = [id, expected];
    const channel = k.finalChannel;
    const settles = settlesConfirm ? '1' : '0';
    switch (step.do) {
      case 'finalize':
        args.push('final', JSON.stringify(event), this.o.retentionMs, channel, settles, step.status, step.failure?.code ?? '', step.failure?.message ?? '',
          step.pg?.transactionKey ?? '', step.pg?.approvedAt ?? '');
        break;
      case 'inquire':
        args.push('inquire', JSON.stringify(event), this.o.retentionMs, channel, settles, step.answered ? '1' : '0');
        break;
      case 'reconfirm':
      case 'cancel':
        args.push(step.do, JSON.stringify(event), this.o.retentionMs, channel, settles);
        break;
      default:
        args.push('note', JSON.stringify(event), this.o.retentionMs, channel, settles);
    }
    const r = await this.r.sluiceApplyStep(k.payment(id), k.open, k.inDoubt, k.counters, k.recentFailures, k.history(id), k.approved, k.finalRate, k.books, k.refundDue, ...args);
    return r[0] === 'ok' ? (r[1] as Phase) : null;
  }

  /**
   * Reconciliation's recorded repair of a final payment: the only way a final state a merchant
   * has seen ever changes. Counted, and kept in the payment's history with its reason.
   */
  async repair(id: string, status: FinalStatus, reason: string, event: Record<string, unknown>): Promise<boolean> {
    const k = this.keys.shardOf(id);
    const r = await this.r.sluiceApplyStep(
      k.payment(id), k.open, k.inDoubt, k.counters, k.recentFailures, k.history(id), k.approved, k.finalRate, k.books, k.refundDue,
      id, 'final', 'repair', JSON.stringify(event), this.o.retentionMs, k.finalChannel, '0', status, reason,
    );
    return r[0] === 'ok';
  }

  /**
   * Records one PG call's result with the shared breaker, and charts it. Returns the breaker's
   * state after it. Results wait up to {@link RECORD_BATCH_MS} and go out together, one script
   * per batch (a round trip and a script call per PG call was a tenth of the sender's CPU,
   * docs/perf.md); the breaker hears of a call that much later, against windows of seconds.
   */
  record(r: CallRecord): Promise<BreakerState> {
    return new Promise((resolve, reject) => {
      this.batch.push({ r, resolve, reject });
      if (this.batch.length >= RECORD_BATCH_MAX) void this.flushRecords();
      else this.batchTimer ??= setTimeout(() => void this.flushRecords(), RECORD_BATCH_MS);
    });
  }

  /** Sends the results waiting to be recorded now (a closing sender flushes before it goes). */
  async flushRecords(): Promise<void> {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    const all = this.batch.splice(0);
    if (all.length === 0) return;
    // Each payment shard has its own breaker, told of its payments' calls (calls of no payment: the first's).
    const byShard = new Map<Keys, typeof all>();
    for (const x of all) {
      const k = x.r.paymentId ? this.keys.shardOf(x.r.paymentId) : this.keys.shards[0]!;
      const batch = byShard.get(k);
      if (batch) batch.push(x);
      else byShard.set(k, [x]);
    }
    await Promise.all([...byShard].map(([k, batch]) => this.recordIn(k, batch)));
  }

  private async recordIn(k: Keys, batch: { r: CallRecord; resolve: (s: BreakerState) => void; reject: (e: Error) => void }[]): Promise<void> {
    const b = this.o.breaker;
    const args: (string | number)[] = [];
    for (const { r } of batch) {
      const sent = r.sent ?? 'now';
      args.push(
        r.pgFailed ? '1' : '0', r.call, r.outcome, r.httpStatus ?? '', sent === 'now' ? '' : String(sent),
        r.paymentId ?? '', r.idempotencyKey ?? '', Math.round(r.latencyMs ?? 0),
      );
    }
    try {
      const states = await this.r.sluiceBreakerRecord(
        k.breaker, `${k.breaker}:window`, k.breakerLog, k.pgRate, k.counters, k.books,
        b.consecutiveFailures, b.failureRate, b.minCalls, b.windowMs, b.openMs, b.closeAfter, ...args,
      );
      batch.forEach((x, i) => x.resolve(states[i] as BreakerState));
    } catch (err) {
      for (const x of batch) x.reject(err as Error);
    }
  }

  /** The breaker as stored (for /readyz, the API and the dashboard). */
  breakerState(): Promise<BreakerView> {
    return readBreaker(this.r, this.keys);
  }
}
