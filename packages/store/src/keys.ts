/**
 * Every Redis key of the payments' state, in one place. All start with the configured prefix.
 * With payment shards (REDIS_SHARDS) each shard holds a full set of the state keys under a prefix
 * of its own (`shardPrefix`: on a Redis Cluster, `{sluice:s<n>:<k>}`, a slot of its own, so each
 * multi-key Lua script runs in one slot), and the root holds only what all shards share: the
 * claims. BullMQ's keys and the permit gate's are in slots of their own there (`queuePrefixOf`,
 * `gatePrefixOf`; docs/redis-cluster.md).
 */
/// <reference path="./cluster-key-slot.d.ts" />
import calculateSlot from 'cluster-key-slot';
import { DEFAULT_PROVIDER, hashTagOf, providerKeyPrefix } from '@sluice/config';

/**
 * Every key name, as one provider's view (several PGs): the keys of that PG's own state (its
 * breaker, its PG chart, its approvals for reconciliation, its outbox of admitted payments, its
 * PG clients' figures) are under `providerKeyPrefix` (the prefix itself for the default provider,
 * so one PG keeps its keys); payments, claims and the rest are shared by all providers.
 */
export interface Keys {
  prefix: string;
  /** The provider these keys are for. */
  provider: string;
  payment(id: string): string;
  history(id: string): string;
  idempotency(merchantId: string, keyHash: string): string;
  byPaymentKey(paymentKey: string): string;
  byOrderId(orderId: string): string;
  /** zset: paymentId → admission time (ms) of admitted payments whose job may not be enqueued yet. */
  outbox: string;
  /** zset: paymentId → createdAt (ms) of every payment that is not final (the backlog). */
  open: string;
  /** zset: paymentId → time it went in doubt (ms), for payments being resolved. */
  inDoubt: string;
  /** zset: paymentId → finalizedAt (ms) of APPROVED payments, for reconciliation. */
  approved: string;
  /** hash: paymentKey → the PG's row, for charges at the PG that Sluice has no record of. */
  orphans: string;
  /**
   * zset: paymentId → when its next merchant cancel step is due (ms): a cancel to send, or one in
   * doubt to query (lua/refund.lua). A worker that takes one leases it (the score moves past its
   * work), so a dead worker's cancels come due again.
   */
  refundDue: string;
  /** A merchant's cancel Idempotency-Key (its SHA-256): the request's fingerprint, payment and answer. */
  cancelIdempotency(merchantId: string, keyHash: string): string;
  /** list: the latest webhook deliveries' latencies (ms from the event to the receiver's 2xx), capped. */
  webhookLatency: string;
  /** hash: the last reconciliation report. */
  reconcileReport: string;
  /** hash: counters (final states, intake outcomes, repairs) for the dashboard and metrics. */
  counters: string;
  /** list: the latest failures (JSON), capped. */
  recentFailures: string;
  /** hash: "<sec>:<call>" → PG calls in that second (all processes). */
  pgRate: string;
  /** hash: "<sec>" → payments accepted in that second. */
  intakeRate: string;
  /** hash: "<sec>:<STATUS>" → payments that became final in that second. */
  finalRate: string;
  /** pub/sub channel: a payment id, each time one becomes final (long polls listen). */
  finalChannel: string;
  /** hash: the shared circuit breaker. */
  breaker: string;
  /** list: breaker transitions (JSON), capped. */
  breakerLog: string;
  /**
   * hash: "<host>:<pid>" → JSON figures of one worker process's PG client (read timeouts in
   * force, mean connection hold), rewritten every few seconds; readers skip stale entries.
   */
  pgClients: string;
  /**
   * counter: failed operator logins in the current window, per client address or per user name
   * (`who` is `addr:<address>` or `user:<sha-256 of the name>`), expiring with the window.
   */
  loginFailures(who: string): string;
  /**
   * stream: every change of a payment (its snapshot at a version) and every PG call, appended by
   * the scripts that make them (lua/includes/books.lua), drained to PostgreSQL by apps/drainer.
   */
  books: string;
  /** The fair share of one provider's budget between merchants (lua/includes/fair-share.lua). */
  fair(provider: string): FairKeys;
  /** `<prefix>:fq:`: a provider's fair keys are under `<fairRoot><provider>:` (scripts that read a payment's provider derive them). */
  fairRoot: string;
  /**
   * The payment shards (REDIS_SHARDS): each a full set of the payments' state keys under a
   * prefix of its own (`{T:s<n>:<k>}`, a hash slot of its own on a Redis Cluster: `shardPrefix`), for this
   * provider. With one shard it is these keys themselves; with more, these keys are the root,
   * which holds only what is shared by all shards (the paymentKey and orderId claims, the
   * pending claims, the shard count), and every payment's state is in its shard's keys.
   */
  shards: readonly Keys[];
  /** The shard keys of payment `id` (its id carries its shard: {@link shardOfPaymentId}). */
  shardOf(id: string): Keys;
  /** zset (root): paymentId → when intake took its claims, until a sweep sees its payment (several shards only). */
  pendingClaims: string;
  /** string (root): the shard count the keys were written with (checked at start-up). */
  shardCount: string;
  /**
   * Every counters hash to add up: the shards' (their scripts count there) and, with several, the
   * root's (what processes count outside a script: stalled jobs, reconciliation, webhooks).
   */
  allCounters: readonly string[];
}

/**
 * One provider's fair-share keys. Scripts derive a merchant's keys from `base` (`<base>q:<id>`,
 * `<base>m:<id>`), so a merchant id never needs a key of its own in a script's KEYS.
 */
export interface FairKeys {
  /** `<prefix>:fq:<provider>:` */
  base: string;
  /** list: a merchant's payments waiting for admission, oldest first. */
  queue(merchantId: string): string;
  /** hash: a merchant's `in` and `out` counts (its queue's tail and head), `credit` and `weight`. */
  merchant(merchantId: string): string;
  /** list: the merchants with payments waiting, in round-robin order. */
  ring: string;
  /** hash: `weights`, the sum of the weights of the merchants in the ring; `waiting`, the payments in their queues. */
  meta: string;
  /** zset: paymentId → admission time (ms) of payments admitted and not yet past the guard. */
  admitted: string;
}

const SLOTS = 16_384;
const shardPrefixes = new Map<string, string>();

/** Tags tried for a shard before settling for the nearest slot (about 16,384 are needed on average). */
const SHARD_TAG_TRIES = 300_000;

/**
 * The prefix of shard `n` of `shards`: without a hash tag (one Redis), `<prefix>:s<n>`; with one,
 * `{T}` → `{T:s<n>:<k>}`, a slot of its own, with the first `k` whose slot is the middle of the
 * n-th of `shards` equal ranges of the 16,384 slots. The shards' slots are then evenly spaced, so a
 * cluster whose P primaries split the slots in equal ranges (as `redis-cli --cluster create` does)
 * serves ⌊S/P⌋ or ⌈S/P⌉ shards on each (S a power of two), whatever the tag: with CRC16 alone,
 * 16 shards over 3 primaries would leave one primary 3 or fewer about one time in five. The
 * search (about 16,384 CRC16s a shard) runs once per prefix and shard.
 */
export function shardPrefix(prefix: string, n: number, shards: number): string {
  const tag = hashTagOf(prefix);
  if (tag === null) return `${prefix}:s${n}`;
  const memo = `${prefix}\n${n}\n${shards}`;
  let out = shardPrefixes.get(memo);
  if (out === undefined) {
    const target = Math.floor(((n + 0.5) * SLOTS) / shards);
    let best = { k: 0, off: SLOTS };
    for (let k = 0; k < SHARD_TAG_TRIES && best.off > 0; k++) {
      const off = Math.abs(calculateSlot(`${tag}:s${n}:${k}`) - target);
      if (off < best.off) best = { k, off };
    }
    out = prefix.replace(`{${tag}}`, `{${tag}:s${n}:${best.k}}`);
    shardPrefixes.set(memo, out);
  }
  return out;
}

/** The shard a payment id names (`pay_…-s<n>`); an id without one is in shard 0. */
export function shardOfPaymentId(id: string): number {
  const m = /-s(\d{1,3})$/.exec(id);
  return m ? Number(m[1]) : 0;
}

/**
 * The shard of a new payment: from its idempotency key's hash (a SHA-256 in hex), so that a
 * retry of the same request lands in the shard that holds its idempotency record.
 */
export function shardForKey(idemKeyHash: string, shards: number): number {
  return shards <= 1 ? 0 : parseInt(idemKeyHash.slice(0, 8), 16) % shards;
}

/**
 * Every key name under a prefix, for one provider (the default one unless given), over
 * `shards` payment shards (REDIS_SHARDS; one keeps every key where it has always been).
 */
export function makeKeys(prefix: string, provider: string = DEFAULT_PROVIDER, shards = 1): Keys {
  const alone = (under: Omit<Keys, 'shards' | 'shardOf' | 'allCounters'>): Keys => {
    const k = under as Keys;
    k.shards = [k];
    k.shardOf = () => k;
    k.allCounters = [k.counters];
    return k;
  };
  const root = keysUnder(prefix, provider);
  if (shards <= 1) return alone(root);
  // Long polls listen on one channel, whichever shard a payment is in.
  const all = Array.from({ length: shards }, (_, n) => alone({ ...keysUnder(shardPrefix(prefix, n, shards), provider), finalChannel: root.finalChannel }));
  const k = root as Keys;
  k.shards = all;
  // An id naming no shard of these (a merchant's typo) is looked for, and not found, in the first.
  k.shardOf = (id) => all[shardOfPaymentId(id)] ?? all[0]!;
  k.allCounters = [k.counters, ...all.map((x) => x.counters)];
  return k;
}

function keysUnder(prefix: string, provider: string): Omit<Keys, 'shards' | 'shardOf' | 'allCounters'> {
  const own = providerKeyPrefix(prefix, provider);
  return {
    prefix,
    provider,
    payment: (id) => `${prefix}:pay:${id}`,
    history: (id) => `${prefix}:pay:${id}:hist`,
    idempotency: (m, h) => `${prefix}:idem:${m}:${h}`,
    byPaymentKey: (k) => `${prefix}:pk:${k}`,
    byOrderId: (o) => `${prefix}:oid:${o}`,
    outbox: `${own}:outbox`,
    open: `${prefix}:open`,
    inDoubt: `${prefix}:indoubt`,
    approved: `${own}:approved`,
    orphans: `${own}:recon:orphans`,
    refundDue: `${own}:refunds:due`,
    cancelIdempotency: (m, h) => `${prefix}:cidem:${m}:${h}`,
    webhookLatency: `${prefix}:wh:latency`,
    reconcileReport: `${own}:recon:last`,
    counters: `${prefix}:counters`,
    recentFailures: `${prefix}:failures`,
    pgRate: `${own}:pgrate`,
    pgClients: `${own}:pgclients`,
    intakeRate: `${prefix}:rate:intake`,
    finalRate: `${prefix}:rate:final`,
    finalChannel: `${prefix}:final`,
    breaker: `${own}:breaker`,
    breakerLog: `${own}:breaker:log`,
    loginFailures: (who) => `${prefix}:login:fail:${who}`,
    books: `${prefix}:books`,
    fairRoot: `${prefix}:fq:`,
    pendingClaims: `${prefix}:claims:pending`,
    shardCount: `${prefix}:shards`,
    fair: (provider) => {
      const base = `${prefix}:fq:${provider}:`;
      return {
        base,
        queue: (m) => `${base}q:${m}`,
        merchant: (m) => `${base}m:${m}`,
        ring: `${base}ring`,
        meta: `${base}meta`,
        admitted: `${base}admitted`,
      };
    },
  };
}
