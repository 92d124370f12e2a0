/**
 * Merchant cancels and refunds in Redis: every change is one call of `lua/refund.lua` (see its
 * header for what each op does). The API asks (`request`); the worker's refunder takes the due
 * payments (`claim`), guards each PG call (`send`, `check`) and applies the answer (`settle`).
 */
import { DEFAULT_PROVIDER, type Config } from '@sluice/config';
import { parseRefunds, type Refund, type RefundStep } from '@sluice/domain';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { lua } from './lua/index.ts';
import { makeKeys, type Keys } from './keys.ts';

/** A merchant's cancel request, as the API validated it. */
export interface CancelRequest {
  paymentId: string;
  merchantId: string;
  cancelId: string;
  /** null: the whole balance left. */
  amount: number | null;
  reason: string;
  idemKeyHash: string;
  fingerprint: string;
}

/** What a cancel request came to (refund.lua `request`). */
export type CancelResult =
  | { kind: 'ok'; cancelId: string }
  /** A repeat of the request: its cancel, and the answer stored then ('' if it was not stored yet). */
  | { kind: 'replay'; cancelId: string; body: string }
  | { kind: 'reused' }
  | { kind: 'not_found' }
  | { kind: 'not_yet' }
  | { kind: 'not_cancelable' }
  | { kind: 'exceeds' };

/** What a refund call's guard answered: send (with what to send), or not. */
export type RefundGuardResult =
  | { ok: true; paymentKey: string; amount: number; reason: string }
  | { ok: false; reason: 'phase' | 'breaker' | 'missing' };

/** A refund call's guard as data (it runs where the send happens, like the phase guard). */
export interface RefundGuardRequest {
  paymentId: string;
  cancelId: string;
  /** `send`: the cancel itself; `check`: a query of a cancel in doubt. */
  op: 'send' | 'check';
  recheck?: boolean;
}

/** A cancel id: time-ordered and unique, like payment ids. */
export function newCancelId(now = Date.now()): string {
  const u = randomUUID().replace(/-/g, '');
  return `cnl_${now.toString(36).padStart(9, '0')}${u.slice(0, 16)}`;
}

/** The PG Idempotency-Key of a merchant's cancel: derived from its id (a new key is a new cancel). */
export const refundKey = (cancelId: string): string => `sluice.${cancelId}`;

type ScriptRedis = Redis & { sluiceRefund(...a: (string | number)[]): Promise<string[]> };

/** What the refund script needs beyond the keys. */
export interface RefundStoreOptions {
  prefix: string;
  /** How long a payment's history and a cancel's idempotency key are kept. */
  retentionMs: number;
  /** Payment shards (REDIS_SHARDS); 1 when absent. */
  shards?: number;
}

/** The options from the parsed config. */
export function refundStoreOptionsOf(c: Config): RefundStoreOptions {
  return { prefix: c.REDIS_PREFIX, retentionMs: c.PAYMENT_RETENTION_MS, shards: c.REDIS_SHARDS };
}

/** Merchant cancels in Redis, for one provider's keys (its refunds due and breaker). */
export class RefundStore {
  private readonly r: ScriptRedis;
  readonly keys: Keys;

  constructor(
    redis: Redis,
    private readonly o: RefundStoreOptions,
    provider: string = DEFAULT_PROVIDER,
  ) {
    this.keys = makeKeys(o.prefix, provider, o.shards ?? 1);
    if (!('sluiceRefund' in redis)) redis.defineCommand('sluiceRefund', { numberOfKeys: 12, lua: lua('refund') });
    this.r = redis as ScriptRedis;
  }

  /** refund.lua in the shard `k` (the payment's, or the one whose due set `claim` reads). */
  private run(paymentId: string, op: string, args: (string | number)[], idemKey = '', k: Keys = this.keys.shardOf(paymentId)): Promise<string[]> {
    return this.r.sluiceRefund(
      k.payment(paymentId), k.history(paymentId), k.books, k.refundDue, k.counters, k.open, k.inDoubt, k.recentFailures, k.approved, k.finalRate,
      k.breaker, idemKey || `${k.prefix}:-`, op, this.o.retentionMs, k.finalChannel, ...args,
    );
  }

  /** The API's request: one atomic check-and-reserve (refund.lua `request`). */
  async request(q: CancelRequest): Promise<CancelResult> {
    const res = await this.run(
      q.paymentId, 'request',
      [q.paymentId, q.merchantId, q.cancelId, q.amount ?? 0, q.reason, q.fingerprint],
      // In the payment's shard, beside it: a key reused for a payment of another shard is not seen as reused.
      this.keys.shardOf(q.paymentId).cancelIdempotency(q.merchantId, q.idemKeyHash),
    );
    switch (res[0]) {
      case 'ok':
        return { kind: 'ok', cancelId: res[1]! };
      case 'replay':
        return { kind: 'replay', cancelId: res[1]!, body: res[2] ?? '' };
      case 'reused':
      case 'not_found':
      case 'not_yet':
      case 'not_cancelable':
      case 'exceeds':
        return { kind: res[0] };
      default:
        throw new Error(`refund.lua request returned ${String(res[0])}`);
    }
  }

  /** Keeps the answer sent for a cancel request, which a repeat of it answers. */
  async storeAnswer(paymentId: string, merchantId: string, idemKeyHash: string, body: string): Promise<void> {
    await this.r.hset(this.keys.shardOf(paymentId).cancelIdempotency(merchantId, idemKeyHash), 'body', body);
  }

  /** The refunder's guard before a PG call for a refund. */
  async guard(g: RefundGuardRequest): Promise<RefundGuardResult> {
    const res = await this.run(g.paymentId, g.op, [g.paymentId, g.cancelId, g.recheck ? '1' : '0', this.keys.shardOf(g.paymentId).fair(this.keys.provider).base]);
    if (res[0] === 'ok') return { ok: true, paymentKey: res[1]!, amount: Number(res[2]), reason: res[3] ?? '' };
    return { ok: false, reason: (res[1] as 'phase' | 'breaker' | 'missing') ?? 'missing' };
  }

  /** Applies the step decided after a PG answer; false when it is stale (another got there). */
  async settle(paymentId: string, cancelId: string, step: RefundStep, event: Record<string, unknown>): Promise<boolean> {
    const delay = step.do === 'check' || step.do === 'retry' || step.do === 'halt' ? step.delayMs : 0;
    const res = await this.run(paymentId, 'settle', [
      paymentId, cancelId, step.do === 'halt' ? 'retry' : step.do, delay,
      step.do === 'succeed' ? (step.transactionKey ?? '') : '',
      step.do === 'fail' ? step.failure.code : '', step.do === 'fail' ? step.failure.message : '',
      JSON.stringify(event),
    ]);
    return res[0] === 'ok';
  }

  /** Reconciliation: a cancel the PG holds that Sluice does not (refund.lua `found`). False when it does not apply. */
  async found(paymentId: string, transactionKey: string, amount: number, event: Record<string, unknown>): Promise<boolean> {
    return (await this.run(paymentId, 'found', [paymentId, transactionKey, amount, JSON.stringify(event)]))[0] === 'ok';
  }

  /** Nothing to do for this payment: it leaves the due set unless a refund is pending. */
  async idle(paymentId: string): Promise<void> {
    await this.run(paymentId, 'idle', [paymentId]);
  }

  /** Takes up to `max` due payments (from each shard), each leased for `leaseMs`. */
  async claim(max: number, leaseMs: number): Promise<string[]> {
    const all = await Promise.all(this.keys.shards.map((k) => this.run('-', 'claim', [max, leaseMs], '', k)));
    return all.flat();
  }

  /** Puts a payment back in the due set at `delayMs` from now (a call held back before it was sent). */
  async later(paymentId: string, delayMs: number): Promise<void> {
    await this.r.zadd(this.keys.shardOf(paymentId).refundDue, 'XX', Date.now() + delayMs, paymentId);
  }

  /** A payment's refunds and in-flight state, as stored. */
  async read(paymentId: string): Promise<{ paymentKey: string; refunds: Refund[]; refundPhase: string; inFlight: string; sentAt: number } | null> {
    const [refunds, phase, inFlight, sentAt, paymentKey] = await this.r.hmget(this.keys.shardOf(paymentId).payment(paymentId), 'refunds', 'refundPhase', 'refundInFlight', 'refundSentAt', 'paymentKey');
    if (!paymentKey) return null;
    return { paymentKey, refunds: parseRefunds(refunds), refundPhase: phase ?? '', inFlight: inFlight ?? '', sentAt: Number(sentAt ?? 0) };
  }
}
