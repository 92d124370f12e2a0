/**
 * The fair share of a provider's budget between merchants, as the workers and the operator see
 * it: admission (lua/admit.lua) and what is waiting. Intake's half is in create-payment.lua, the
 * rules in lua/includes/fair-share.lua.
 */
import type { Redis } from 'ioredis';
import type { FairKeys, Keys } from './keys.ts';
import { lua } from './lua/index.ts';
import type { PaymentRecord } from './record.ts';


/** A merchant with payments waiting for admission, for the dashboard. */
export interface WaitingMerchant {
  merchantId: string;
  waiting: number;
  weight: number;
}

/** The fair queues of one provider at a glance. */
export interface FairView {
  /** Payments admitted and not yet past the guard. */
  admitted: number;
  /** Merchants with payments waiting (the ring). */
  merchants: number;
  /** Their weights' sum. */
  activeWeights: number;
  /** The first of them in ring order, at most `limit`. */
  top: WaitingMerchant[];
}

/** Where a new payment of a merchant would stand at a provider now (lua/estimate.lua). */
export interface FairEstimate {
  /** PG send slots until it would reach the PG, its own included (see `etaMs`). */
  slots: number;
  /** Payments waiting in the provider's merchants' queues. */
  waiting: number;
  /** Payments admitted and not yet sent. */
  admitted: number;
}

type ScriptRedis = Redis & {
  sluiceAdmit(...args: (string | number)[]): Promise<string[]>;
  sluiceEstimate(...args: (string | number)[]): Promise<[string, number, number]>;
};

/** One provider's fair queues: admission by turns, and reads. */
export class FairShare {
  readonly keys: FairKeys;
  private readonly r: ScriptRedis;

  /**
   * One provider's fair queues in one payment shard: `allKeys` is that provider's view
   * (`makeKeys(prefix, provider)`), or with several shards one of its `shards` ({@link fairShares}).
   */
  constructor(
    redis: Redis,
    private readonly allKeys: Keys,
  ) {
    if (allKeys.shards[0] !== allKeys) throw new Error('FairShare: give one shard\'s keys (fairShares gives one per shard)');
    this.keys = allKeys.fair(allKeys.provider);
    if (!('sluiceAdmit' in redis)) {
      redis.defineCommand('sluiceAdmit', { numberOfKeys: 5, lua: lua('admit') });
      redis.defineCommand('sluiceEstimate', { numberOfKeys: 4, lua: lua('estimate') });
    }
    this.r = redis as ScriptRedis;
  }

  /**
   * Admits payments by turns until `lead` are admitted and not yet past the guard, at most `max`
   * in this call; those admitted more than `staleMs` ago no longer count (config
   * `admittedStaleMs`). Each gets an outbox marker: add its confirm job, then clear the marker.
   */
  admit(lead: number, max: number, staleMs: number): Promise<string[]> {
    const f = this.keys;
    return this.r.sluiceAdmit(f.ring, f.meta, f.admitted, this.allKeys.outbox, this.allKeys.breaker, f.base, lead, max, staleMs);
  }

  /**
   * Whether a QUEUED payment is still in its merchant's fair queue (so it has no job yet, and
   * needs none). A payment written before the fair queues (no `fqSeq`) is not.
   */
  async awaitingAdmission(rec: PaymentRecord): Promise<boolean> {
    if (rec.status !== 'QUEUED' || rec.fqSeq === null) return false;
    const out = Number((await this.r.hget(this.keys.merchant(rec.merchantId), 'out')) ?? 0);
    return rec.fqSeq > out;
  }

  /** Where a new payment of `merchantId` (with its `weight`) would stand now, and the provider's backlog. */
  async estimate(merchantId: string, weight: number): Promise<FairEstimate> {
    const f = this.keys;
    const [slots, waiting, admitted] = await this.r.sluiceEstimate(f.meta, f.admitted, f.queue(merchantId), f.merchant(merchantId), weight);
    return { slots: Number(slots), waiting: Number(waiting), admitted: Number(admitted) };
  }

  /** The admitted count, the merchants waiting and the first `limit` of them. */
  async view(limit = 20): Promise<FairView> {
    const f = this.keys;
    const [admitted, activeWeights, ring, merchants] = await Promise.all([
      this.r.zcard(f.admitted), this.r.hget(f.meta, 'weights'), this.r.lrange(f.ring, 0, limit - 1), this.r.llen(f.ring),
    ]);
    const pipe = this.r.pipeline();
    for (const m of ring) pipe.llen(f.queue(m)).hget(f.merchant(m), 'weight');
    const res = (await pipe.exec()) ?? [];
    const top = ring.map((merchantId, i) => ({
      merchantId,
      waiting: Number(res[2 * i]?.[1] ?? 0),
      weight: Number(res[2 * i + 1]?.[1] ?? 1),
    }));
    return { admitted, merchants, activeWeights: Number(activeWeights ?? 0), top };
  }
}

/** One provider's fair queues in each payment shard (each shard admits its own payments). */
export function fairShares(redis: Redis, keys: Keys): FairShare[] {
  return keys.shards.map((k) => new FairShare(redis, k));
}

/**
 * Where a new payment of `merchantId` would stand over all shards: each shard serves its part of
 * the rate, so the slots ahead are the shards' slots added up (about S × one shard's).
 */
export async function estimateAll(fairs: readonly FairShare[], merchantId: string, weight: number): Promise<FairEstimate> {
  const all = await Promise.all(fairs.map((f) => f.estimate(merchantId, weight)));
  return all.reduce((a, b) => ({ slots: a.slots + b.slots, waiting: a.waiting + b.waiting, admitted: a.admitted + b.admitted }));
}

/** The fair queues of all shards at a glance: counts added up, merchants merged. */
export async function viewAll(fairs: readonly FairShare[], limit = 20): Promise<FairView> {
  const all = await Promise.all(fairs.map((f) => f.view(limit)));
  if (all.length === 1) return all[0]!;
  const top = new Map<string, WaitingMerchant>();
  for (const v of all) {
    for (const m of v.top) {
      const seen = top.get(m.merchantId);
      top.set(m.merchantId, seen ? { ...seen, waiting: seen.waiting + m.waiting } : { ...m });
    }
  }
  const merchants = new Set(all.flatMap((v) => v.top.map((m) => m.merchantId)));
  return {
    admitted: all.reduce((n, v) => n + v.admitted, 0),
    // A merchant waiting in several shards is one merchant; past `limit` per shard, the largest count.
    merchants: Math.max(merchants.size, ...all.map((v) => v.merchants)),
    activeWeights: Math.max(...all.map((v) => v.activeWeights)),
    top: [...top.values()].sort((a, b) => b.waiting - a.waiting).slice(0, limit),
  };
}
