/**
 * Every Redis key of the payments' state, in one place. All start with the configured prefix; on
 * a Redis Cluster (REDIS_PREFIX `{sluice}`) they share its hash tag, so each multi-key Lua script
 * runs in one slot. BullMQ's keys and the permit gate's are in slots of their own there
 * (`queuePrefixOf`, `gatePrefixOf`; docs/redis-cluster.md).
 */
import { DEFAULT_PROVIDER, providerKeyPrefix } from '@sluice/config';

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

/** Every key name under a prefix, for one provider (the default one unless given). */
export function makeKeys(prefix: string, provider: string = DEFAULT_PROVIDER): Keys {
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
