/**
 * Payments in Redis: intake (one Lua script, one round trip) and reads. The worker's state
 * changes live in `transitions.ts`.
 */
import { DEFAULT_PROVIDER, type Config } from '@sluice/config';
// cjson refuses lone surrogates in the script's JSON argument: they go in as UTF-8 would carry them.
import { wellFormed } from '@sluice/domain';
import type { Redis } from 'ioredis';
import { lua } from './lua/index.ts';
import { claimHolder, RootClaims } from './claims.ts';
import { makeKeys, shardForKey, type Keys } from './keys.ts';
import { newPaymentId, parseRecord, type PaymentRecord } from './record.ts';

/** A payment as intake creates it. */
export interface NewPayment {
  id: string;
  merchantId: string;
  /** The PG it goes to (a provider id). */
  provider: string;
  paymentKey: string;
  orderId: string;
  amount: number;
  currency: string;
  metadata: Record<string, string> | null;
  requestId: string | null;
  createdAt: number;
}

/** What creating a payment came to: created, a replay of the same request, a key reused for another request, a paymentKey or orderId already held, or a full backlog. */
export type CreateResult =
  | { kind: 'created'; id: string; body: string }
  /** A repeat of the request that made payment `id`: {@link ReplayAnswer} says where its 202 body is. */
  | { kind: 'replay'; id: string; answer: ReplayAnswer }
  | { kind: 'reused' }
  | { kind: 'dup_payment_key'; heldBy: string }
  | { kind: 'dup_order_id'; heldBy: string }
  | { kind: 'backlog_full'; backlog: number }
  /** The merchant's own queue is at the ceiling at its share of the rate; `retryAfterSeconds` drains the excess. */
  | { kind: 'merchant_backlog_full'; retryAfterSeconds: number }
  /** (several shards) A sweep fenced the claims' payment while this request was under way: retry. */
  | { kind: 'fenced' };

/**
 * Where a replay's 202 body comes from: rendered again from the payment while it is hot (its
 * first version's fields and the eta given then), stored whole (a key written before the body
 * left Redis), or the books once the payment is archived.
 */
export type ReplayAnswer =
  | { from: 'record'; record: PaymentRecord; eta: string }
  | { from: 'body'; body: string }
  | { from: 'books' };

/** Reads create-payment.lua's `replay` answer: `{'replay', id, body}` or `{'replay', id, '', eta, field, value, …}`. */
function replayAnswer(res: string[]): ReplayAnswer {
  if (res[2]) return { from: 'body', body: res[2] };
  const hash: Record<string, string> = {};
  for (let i = 4; i + 1 < res.length; i += 2) hash[res[i]!] = res[i + 1]!;
  const record = parseRecord(hash);
  return record ? { from: 'record', record, eta: res[3] ?? '' } : { from: 'books' };
}

/** The PG's rate: `limit` calls per `windowMs` (PG_RATE_LIMIT per PG_RATE_WINDOW_MS). */
export interface PgRate {
  windowMs: number;
  limit: number;
}

/**
 * A 202 body with a hole for its `eta`: the intake script fills in the ISO time from the backlog
 * it counts anyway, so the stored body and the one sent carry the same estimate at no extra cost.
 * The body is `head + eta + tail`.
 */
export interface Body202Template {
  head: string;
  tail: string;
  rate: PgRate;
}

/**
 * The 202 body: as it is, a template, or made from the payment's id (with several shards the id
 * is settled only once the claims are taken: a merchant's retry goes on with its first try's).
 */
export type Body202 = string | Body202Template | ((id: string) => string | Body202Template);

/** A payment as read for a merchant, with how far it is from the PG (null when it is not QUEUED). */
export interface PaymentView {
  record: PaymentRecord;
  /**
   * PG send slots until it should reach the PG, its own included (lua/view.lua): the payments
   * admitted before it and its merchant's turns ahead of it at its fair share.
   */
  slots: number | null;
}

/**
 * When a payment `slots` PG send slots away should reach the PG, in ms from `nowMs`, at the PG's
 * rate. create-payment.lua computes the same expression for the 202.
 */
export function etaMs(slots: number, nowMs: number, rate: PgRate): number {
  return Math.floor(nowMs + (slots * rate.windowMs) / rate.limit);
}

/** Where the store's keys live and how long what it writes is kept. */
export interface StoreOptions {
  prefix: string;
  idempotencyTtlMs: number;
  retentionMs: number;
  /** Payment shards (REDIS_SHARDS); 1 when absent. */
  shards?: number;
}

/** The store's options from the parsed config. */
export function storeOptionsOf(c: Config): StoreOptions {
  return { prefix: c.REDIS_PREFIX, idempotencyTtlMs: c.IDEMPOTENCY_TTL_MS, retentionMs: c.PAYMENT_RETENTION_MS, shards: c.REDIS_SHARDS };
}

type ScriptRedis = Redis & {
  sluiceCreatePayment(...args: (string | number)[]): Promise<string[]>;
  sluiceRehydrate(...args: (string | number)[]): Promise<number>;
  sluiceView(...args: (string | number)[]): Promise<string[]>;
};

/** Payments and idempotency keys in Redis: intake's one script, and the reads. */
export class PaymentStore {
  /** The root keys; a payment's are `keys.shardOf(id)`. */
  readonly keys: Keys;
  /** The claims at the root, with several shards (null with one: create-payment.lua takes them). */
  readonly claims: RootClaims | null;
  private readonly r: ScriptRedis;

  constructor(redis: Redis, readonly opts: StoreOptions) {
    this.keys = makeKeys(opts.prefix, DEFAULT_PROVIDER, opts.shards ?? 1);
    this.claims = this.keys.shards.length > 1 ? new RootClaims(redis, this.keys, opts.retentionMs) : null;
    if (!('sluiceCreatePayment' in redis)) {
      redis.defineCommand('sluiceCreatePayment', { numberOfKeys: 13, lua: lua('create-payment') });
      redis.defineCommand('sluiceRehydrate', { numberOfKeys: 1, lua: lua('rehydrate') });
      redis.defineCommand('sluiceView', { numberOfKeys: 2, lua: lua('view') });
    }
    this.r = redis as ScriptRedis;
  }

  get redis(): Redis {
    return this.r;
  }

  /** A new payment's id, in the shard of its idempotency key (see `shardForKey`). */
  newId(now: number, idemKeyHash: string): string {
    const shards = this.keys.shards.length;
    return newPaymentId(now, shards > 1 ? shardForKey(idemKeyHash, shards) : null);
  }

  /**
   * Creates the payment unless the idempotency key, the paymentKey or the orderId says
   * otherwise, or the backlog is at its ceiling (all payments not final: `ceilings.all`; the
   * merchant's waiting at its share of its provider's rate: `ceilings.merchant`, in send slots),
   * and puts it in its merchant's fair queue at its provider with the merchant's `weight`. One
   * atomic step.
   */
  async create(
    p: NewPayment,
    idemKeyHash: string,
    fingerprint: string,
    body202: Body202,
    ceilings: number | { all: number; merchant: number },
    weight = 1,
  ): Promise<CreateResult> {
    if (!this.claims) return this.createIn(p, idemKeyHash, fingerprint, body202, ceilings, weight, '');
    // Several shards: the claims first, at the root; then the payment in its shard.
    const request = `${p.merchantId}:${idemKeyHash}`;
    let takeovers = 0;
    let fenced = 0;
    for (;;) {
      const c = await this.claims.take(p, request, p.createdAt);
      if (c.kind !== 'ok') {
        // A holder that ended FAILED before any confirm released its claims (finalize.lua): take
        // them over (each of the two claims may have its own such holder).
        if (takeovers < 2 && (await this.r.hget(this.keys.shardOf(c.heldBy).payment(c.heldBy), 'claimsReleased')) === '1') {
          takeovers++;
          await this.claims.release({ id: c.heldBy, paymentKey: p.paymentKey, orderId: p.orderId });
          continue;
        }
        // The idempotency key still decides first: a repeat of a request is answered as one.
        return this.createIn(p, idemKeyHash, fingerprint, body202, ceilings, weight, `refused ${c.kind} ${c.heldBy}`);
      }
      const res = await this.createIn({ ...p, id: c.id }, idemKeyHash, fingerprint, body202, ceilings, weight, 'granted');
      const mine = { id: c.id, paymentKey: p.paymentKey, orderId: p.orderId };
      if (res.kind === 'fenced') {
        // A sweep found no payment for these claims in time and fenced the id: its claims go, and
        // the request starts once more, afresh, with an id of its own.
        await this.claims.release(mine);
        if (fenced++ > 0) return res;
        p = { ...p, id: this.newId(p.createdAt, idemKeyHash) };
        continue;
      }
      // Claims taken for a request the shard refused go back (a sweep would, later).
      if (c.fresh && res.kind !== 'created') await this.claims.release(mine);
      return res;
    }
  }

  /** create-payment.lua in the payment's shard; `claims` is its ARGV[15]. */
  private async createIn(
    p: NewPayment,
    idemKeyHash: string,
    fingerprint: string,
    body202: Body202,
    ceilings: number | { all: number; merchant: number },
    weight: number,
    claims: string,
  ): Promise<CreateResult> {
    const k = this.keys.shardOf(p.id);
    const f = k.fair(p.provider);
    const { all, merchant } = typeof ceilings === 'number' ? { all: ceilings, merchant: ceilings } : ceilings;
    // One JSON argument for the hash (values as strings: cjson would turn numbers into doubles
    // and Lua would print large ones in exponent form).
    const fields: Record<string, string> = {
      id: p.id, merchantId: wellFormed(p.merchantId), paymentKey: wellFormed(p.paymentKey), orderId: wellFormed(p.orderId),
      amount: String(p.amount), currency: wellFormed(p.currency), status: 'QUEUED', phase: 'queued', provider: p.provider,
      createdAt: String(p.createdAt), updatedAt: String(p.createdAt), attempts: '0', pgCalls: '0',
      // Which idempotency key answers for it: archiving leaves that key only what a replay needs.
      idemHash: idemKeyHash,
    };
    if (p.metadata) fields.metadata = JSON.stringify(p.metadata);
    if (p.requestId) fields.requestId = wellFormed(p.requestId);
    const made = typeof body202 === 'function' ? body202(p.id) : body202;
    const t = typeof made === 'string' ? { head: made, tail: '', rate: null } : made;
    // With several shards the backlog ceiling is each shard's part of it.
    const shards = this.keys.shards.length;
    const res = await this.r.sluiceCreatePayment(
      k.idempotency(p.merchantId, idemKeyHash), k.payment(p.id), k.byPaymentKey(p.paymentKey), k.byOrderId(p.orderId),
      k.open, k.counters, k.intakeRate, k.books, f.ring, f.meta, f.admitted, f.queue(p.merchantId), f.merchant(p.merchantId),
      fingerprint, p.id, p.createdAt, this.opts.idempotencyTtlMs, this.opts.retentionMs, Math.ceil(all / shards),
      t.head, t.tail, t.rate ? t.rate.windowMs : '', t.rate ? t.rate.limit / shards : '', JSON.stringify(fields), weight, p.merchantId,
      Math.ceil(merchant / shards), claims,
    );
    switch (res[0]) {
      case 'created':
        return { kind: 'created', id: res[1]!, body: t.head + res[2]! + t.tail };
      case 'replay':
        return { kind: 'replay', id: res[1]!, answer: replayAnswer(res) };
      case 'reused':
        return { kind: 'reused' };
      case 'dup_payment_key':
        return { kind: 'dup_payment_key', heldBy: res[1]! };
      case 'dup_order_id':
        return { kind: 'dup_order_id', heldBy: res[1]! };
      case 'backlog_full':
        return { kind: 'backlog_full', backlog: Number(res[1]) };
      case 'merchant_backlog_full':
        return { kind: 'merchant_backlog_full', retryAfterSeconds: Number(res[1]) };
      case 'fenced':
        return { kind: 'fenced' };
      default:
        throw new Error(`create-payment returned ${String(res[0])}`);
    }
  }

  /**
   * Puts a payment the books hold back into Redis for `keepMs`, unless Redis holds it: for
   * reconciliation, which checks and repairs payments through Redis (lua/rehydrate.lua).
   */
  async rehydrate(snapshot: Record<string, string>, keepMs: number): Promise<boolean> {
    if (!snapshot.id) return false;
    return (await this.r.sluiceRehydrate(this.keys.shardOf(snapshot.id).payment(snapshot.id), JSON.stringify(snapshot), keepMs)) === 1;
  }

  async get(id: string): Promise<PaymentRecord | null> {
    return parseRecord(await this.r.hgetall(this.keys.shardOf(id).payment(id)));
  }

  /** Finds a payment by orderId (orderIds are unique across all merchants). */
  async getByOrderId(orderId: string): Promise<PaymentRecord | null> {
    const id = claimHolder(await this.r.get(this.keys.byOrderId(orderId)));
    return id ? this.get(id) : null;
  }

  /**
   * A payment and, while it is QUEUED, the send slots until it should reach the PG, read in one
   * script so that the two agree (lua/view.lua).
   */
  async view(id: string): Promise<PaymentView | null> {
    const k = this.keys.shardOf(id);
    const [slots, ...fields] = await this.r.sluiceView(k.payment(id), k.open, k.fairRoot, id, DEFAULT_PROVIDER);
    const h: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) h[fields[i]!] = fields[i + 1]!;
    const record = parseRecord(h);
    // With several shards, a payment's place is counted in its shard, which gets its share of the rate.
    return record ? { record, slots: slots ? Number(slots) * this.keys.shards.length : null } : null;
  }

  /** {@link view} by orderId: one GET for the claim, then the view. */
  async viewByOrderId(orderId: string): Promise<PaymentView | null> {
    const id = claimHolder(await this.r.get(this.keys.byOrderId(orderId)));
    return id ? this.view(id) : null;
  }

  /** The number of payments that are not final: the backlog. */
  async backlog(): Promise<number> {
    let n = 0;
    for (const k of this.keys.shards) n += await this.r.zcard(k.open);
    return n;
  }

  /** A payment's recorded history (oldest first). */
  async history(id: string): Promise<Record<string, unknown>[]> {
    const rows = await this.r.lrange(this.keys.shardOf(id).history(id), 0, -1);
    return rows.map((r) => JSON.parse(r) as Record<string, unknown>);
  }

  /** Adds to one of the shared counters (`counters` reads them all). */
  async count(field: string, by = 1): Promise<void> {
    await this.r.hincrby(this.keys.counters, field, by);
  }

  /** Counters kept by the scripts (intake, final states, repairs) and the processes, summed over the shards. */
  async counters(): Promise<Record<string, number>> {
    return sumCounters(await Promise.all(this.keys.allCounters.map((k) => this.r.hgetall(k))));
  }
}

/** Fields that say how late something is, not how many: of several shards', the largest. */
const LARGEST_OF = new Set(['books:lagMs', 'books:lagAt']);

/** Counter hashes (the root's and each shard's) added up field by field. */
export function sumCounters(hashes: readonly Record<string, string>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const h of hashes) {
    for (const [k, v] of Object.entries(h)) out[k] = LARGEST_OF.has(k) ? Math.max(out[k] ?? 0, Number(v)) : (out[k] ?? 0) + Number(v);
  }
  return out;
}
