/**
 * The paymentKey and orderId claims at the root, with several payment shards (REDIS_SHARDS > 1):
 * taken by intake before its shard writes the payment (lua/claim.lua), released when the shard
 * refused the request or the payment never appeared (lua/release-claims.lua after
 * lua/fence.lua), shortened when the payment is archived. With one shard the claims are taken in
 * the payment's own script (create-payment.lua) and none of this runs. docs/redis-cluster.md
 * says why the steps are in this order.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';
import { lua } from './lua/index.ts';

type ScriptRedis = Redis & {
  sluiceClaim(...a: (string | number)[]): Promise<string[]>;
  sluiceReleaseClaims(...a: (string | number)[]): Promise<number>;
  sluiceFence(...a: (string | number)[]): Promise<string>;
};

/** The payment a claim's value names: `<id>` (one shard) or `<id> <merchant>:<idempotency hash>`. */
export function claimHolder(value: string | null): string | null {
  if (!value) return null;
  const sp = value.indexOf(' ');
  return sp < 0 ? value : value.slice(0, sp);
}

/** What taking a request's claims came to. */
export type ClaimResult =
  /** The claims name `id`: new (`fresh`), or taken by an earlier try of the same request. */
  | { kind: 'ok'; id: string; fresh: boolean }
  | { kind: 'dup_payment_key' | 'dup_order_id'; heldBy: string };

/** The claims one payment holds at the root. */
export interface ClaimOf {
  id: string;
  paymentKey: string;
  orderId: string;
}

/** The pending entry of a fresh claim: the payment and what it claimed, so a sweep can release them. */
const pendingMember = (c: ClaimOf): string => JSON.stringify([c.id, c.paymentKey, c.orderId]);

/** The root's claims (several shards): taken, released, settled by a sweep. */
export class RootClaims {
  private readonly r: ScriptRedis;

  /** `keys`: the root keys (makeKeys with several shards). */
  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly retentionMs: number,
  ) {
    if (!('sluiceClaim' in redis)) {
      redis.defineCommand('sluiceClaim', { numberOfKeys: 3, lua: lua('claim') });
      redis.defineCommand('sluiceReleaseClaims', { numberOfKeys: 3, lua: lua('release-claims') });
      redis.defineCommand('sluiceFence', { numberOfKeys: 1, lua: lua('fence') });
    }
    this.r = redis as ScriptRedis;
  }

  /** Takes `c`'s claims for the request `<merchant>:<idempotency hash>`, at `now`. */
  async take(c: ClaimOf, request: string, now: number): Promise<ClaimResult> {
    const k = this.keys;
    const r = await this.r.sluiceClaim(k.byPaymentKey(c.paymentKey), k.byOrderId(c.orderId), k.pendingClaims, c.id, request, now, this.retentionMs, pendingMember(c));
    if (r[0] === 'ok') return { kind: 'ok', id: r[1]!, fresh: r[2] === '1' };
    return { kind: r[1] === 'dup_order_id' ? 'dup_order_id' : 'dup_payment_key', heldBy: r[2]! };
  }

  /** Releases `c`'s claims if they still name `c.id` (and its pending entry); with `keepUntil`, keeps them until then instead. */
  async release(c: ClaimOf, keepUntil: number | null = null): Promise<number> {
    const k = this.keys;
    return this.r.sluiceReleaseClaims(k.byPaymentKey(c.paymentKey), k.byOrderId(c.orderId), k.pendingClaims, c.id, pendingMember(c), keepUntil ?? '');
  }

  /**
   * Settles the claims taken more than `graceMs` ago, `batch` at a time until none is left (at
   * most `maxBatches`: intake adds one per payment, and a sweep must keep up with it): a payment
   * its shard holds leaves the pending set; one its shard does not hold is fenced there (no create
   * can follow) and its claims released. Returns how many were released.
   */
  async sweep(now: number, graceMs: number, batch = 1_000, maxBatches = 50): Promise<number> {
    const k = this.keys;
    let released = 0;
    for (let b = 0; b < maxBatches; b++) {
      const members = await this.r.zrangebyscore(k.pendingClaims, '-inf', now - graceMs, 'LIMIT', 0, batch);
      if (members.length === 0) break;
      const claims = members.map((m) => {
        const [id, paymentKey, orderId] = JSON.parse(m) as [string, string, string];
        return { id, paymentKey, orderId };
      });
      const fences = await Promise.all(claims.map((c) => this.r.sluiceFence(k.shardOf(c.id).payment(c.id), this.retentionMs)));
      const seen = members.filter((_, i) => fences[i] === 'exists');
      if (seen.length > 0) await this.r.zrem(k.pendingClaims, ...seen);
      for (const [i, c] of claims.entries()) {
        if (fences[i] === 'fenced') {
          await this.release(c);
          released++;
        }
      }
      if (members.length < batch) break;
    }
    return released;
  }
}
