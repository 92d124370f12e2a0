/**
 * The PG port in this thread: the permit gate, the pg-client and the phase guard, wired from one
 * config. The sender thread runs exactly this; `PG_SENDER_THREAD=false` runs it in the worker's
 * main thread instead.
 */
import { isMainThread } from 'node:worker_threads';
import type { Config } from '@sluice/config';
import { PgClient, pgClientOptionsOf, Ungated, type CallObserver, type CancelBody } from '@sluice/pg-client';
import { permitGateOf, type PermitGate } from '@sluice/permit-gate';
import { RefundStore, refundStoreOptionsOf, replicaWaiterOf, type Redis, type ReplicaWaiter, type Transitions } from '@sluice/store';
import type { GuardSpec, PgPort, PortCallOptions, PortResult, Refusal, SenderStats, TransactionsQuery } from './pg-port.ts';

/**
 * The calls that go out only once the state allowing them is on a replica (REDIS_WAIT_REPLICAS):
 * a payment's cancel and a refund's cancel. A failover that lost the decision to cancel would
 * let a re-run confirm again after the PG cancelled (the stored confirm answer would show an
 * approval the PG no longer holds); one that lost a refund's in-flight mark would send the same
 * partial cancel again after an answer never read, and the PG keeps no 5xx or timed-out answer,
 * so it would refund twice. Confirms and queries need no wait: one sent again under the same key
 * charges nothing twice (apps/worker/src/lost-writes.test.ts).
 */
function needsReplica(guard: GuardSpec): boolean {
  return 'refund' in guard ? guard.refund.op === 'send' : guard.call === 'cancel';
}

/** The PG port in this thread: the permit gate, the PG client and the phase guard, wired from one config. */
export class LocalPg implements PgPort {
  readonly gate: PermitGate | null;
  readonly client: PgClient;

  /** The guard of merchant refunds' calls (the provider's refunds, under its breaker). */
  private readonly refunds: RefundStore;
  /** Confirms a cancel's guard on replicas (REDIS_WAIT_REPLICAS > 0), on the connection the guard runs on. */
  readonly replicas: ReplicaWaiter | null;
  /** Whether `replicas` is this port's own (closed with it) or its caller's. */
  private readonly ownsReplicas: boolean;

  /**
   * `replicas`: the caller's waiter on the same `redis` (the worker's main thread has one already);
   * by default one of its own, as in the sender thread.
   */
  constructor(config: Config, redis: Redis, private readonly transitions: Transitions, observer: CallObserver = {}, replicas?: ReplicaWaiter | null) {
    this.refunds = new RefundStore(redis, refundStoreOptionsOf(config), config.PG_PROVIDER);
    this.ownsReplicas = replicas === undefined;
    this.replicas = replicas === undefined ? replicaWaiterOf(config, redis) : replicas;
    // The sender thread sleeps through the last millisecond before a slot; a main thread, which
    // has other work, looks again each turn.
    this.gate = config.GATE_ENABLED ? permitGateOf(config, redis, isMainThread ? 'turns' : 'sleep') : null;
    this.client = new PgClient(
      pgClientOptionsOf(config),
      this.gate ?? new Ungated(),
      {
        onCall: (report) => {
          // The PG's per-second chart counts a call in the second it was sent, on the Redis clock
          // the gate counts on (by completion, slow answers would pile into a later second).
          const sent: number | 'now' | 'unsent' =
            report.transport === 'not_sent' ? 'unsent' : report.sentAtMs === null ? 'now' : Math.floor(this.gate?.serverMs(report.sentAtMs) ?? report.sentAtMs);
          // The shared breaker's bookkeeping; a lost record only delays the breaker's view.
          transitions
            .record({
              call: report.call, outcome: report.outcome, pgFailed: report.pgFailed, httpStatus: report.httpStatus ?? undefined, sent,
              paymentId: report.paymentId, idempotencyKey: report.idempotencyKey, latencyMs: report.latencyMs,
            })
            .catch(() => undefined);
          observer.onCall?.(report);
        },
      },
    );
  }

  private opts(options: PortCallOptions = {}) {
    const guard = options.guard;
    const paymentId = guard ? ('refund' in guard ? guard.refund.paymentId : guard.paymentId) : undefined;
    return {
      idempotencyKey: options.idempotencyKey,
      requestId: options.requestId,
      paymentId,
      guard: guard
        ? async (recheck: boolean): Promise<Refusal | null> => {
            // A re-check (a later slot for the same call) stands on the first check's confirmation.
            const mark = this.replicas && !recheck && needsReplica(guard) ? this.replicas.mark(paymentId) : null;
            const refusal = await this.guardOnce(guard, recheck);
            if (refusal) return refusal;
            // The WAIT covers everything the server had answered before it: the guard's own write
            // (a refund's in-flight mark) and the decision it read (a payment's `canceling`).
            if (mark && !(await this.replicas!.confirm(mark))) return { ok: false, reason: 'unreplicated' };
            return null;
          }
        : undefined,
    };
  }

  private async guardOnce(guard: GuardSpec, recheck: boolean): Promise<Refusal | null> {
    if ('refund' in guard) {
      const r = await this.refunds.guard({ ...guard.refund, recheck });
      if (r.ok) return null;
      return r.reason === 'breaker' ? { ok: false, reason: 'breaker', state: 'open' } : r.reason === 'phase' ? { ok: false, reason: 'phase', phase: 'refund' } : { ok: false, reason: 'missing' };
    }
    const result = await this.transitions.guard({ ...guard, recheck });
    return result.ok ? null : result;
  }

  confirm(payment: { paymentKey: string; orderId: string; amount: number }, options: PortCallOptions): Promise<PortResult> {
    return this.client.confirm(payment, this.opts(options));
  }
  inquire(paymentKey: string, options?: PortCallOptions): Promise<PortResult> {
    return this.client.inquire(paymentKey, this.opts(options));
  }
  cancel(paymentKey: string, body: CancelBody, options: PortCallOptions): Promise<PortResult> {
    return this.client.cancel(paymentKey, body, this.opts(options));
  }
  transactions(query: TransactionsQuery, options?: PortCallOptions): Promise<PortResult> {
    return this.client.transactions(query, this.opts(options));
  }

  stats(): SenderStats {
    const gate = this.gate?.stats;
    return {
      granted: gate?.granted ?? 0,
      tooLate: gate?.tooLate ?? 0,
      fetches: gate?.fetches ?? 0,
      fetchErrors: gate?.fetchErrors ?? 0,
      rateLimited: gate?.rateLimited ?? 0,
      marginMs: this.gate?.currentMarginMs() ?? 0,
      ...this.client.stats(),
    };
  }

  async close(): Promise<void> {
    if (this.ownsReplicas) await this.replicas?.close();
    this.gate?.close();
    await this.client.close();
    // The calls' results still waiting to be recorded (Transitions.record batches them).
    await this.transitions.flushRecords();
  }
}
