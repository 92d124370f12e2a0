/**
 * The refunder: sends merchants' refunds of approved payments to the PG, one per payment at a
 * time, and settles each. Every worker process runs one per provider; they share the provider's
 * due set (store `RefundStore`, lua/refund.lua), each taking due payments under a lease, so a dead
 * worker's refunds come due again once its lease lapses.
 *
 * One step of a payment:
 * - its first PENDING refund with none in flight: the cancel, through the permit gate and its
 *   guard (which marks it in flight), with the PG Idempotency-Key derived from the cancel's id;
 * - a refund in flight (its answer was not known, or its worker died after the guard): a query of
 *   the payment, never the cancel again. The PG does not store a 5xx or a timed-out answer, so
 *   the same key sent again would cancel again if the first had committed (../docs/pg-contract.md).
 * What to do with each answer is the domain's (refunds.ts); the step is applied by the script.
 */
import { afterRefundCancel, afterRefundCheck, type PgOutcome, type Refund, type RefundStep } from '@sluice/domain';
import { refundKey, type RefundStore } from '@sluice/store';
import type { Logger } from 'pino';
import { UNREPLICATED_RETRY_MS, type PgPort, type Refusal } from './sender/pg-port.ts';

/** What the refunder needs: the provider's PG port and refunds, its timing, and a logger. */
export interface RefunderOptions {
  pg: PgPort;
  refunds: RefundStore;
  log: Logger;
  /** How often it looks for due refunds (ms). */
  tickMs: number;
  /** The most payments it works on at once. */
  concurrency: number;
  /** How long a taken payment is its own; longer than any one PG call with its wait for a slot. */
  leaseMs: number;
  /** How long an answered query that shows no trace of a cancel in doubt waits before it is FAILED (domain `settleMs`). */
  settleMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** How long a call held back by the breaker waits. */
  breakerWaitMs: number;
}

/** Runs the refunds of one provider in a loop until stopped. */
export class Refunder {
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;
  private readonly retries = new Map<string, number>();
  /** Steps under way: up to `concurrency`, each started as a slot frees (a slow call holds only its own). */
  private readonly inFlight = new Set<Promise<void>>();
  /** Steps this process ran (for tests and metrics). */
  steps = 0;

  constructor(private readonly o: RefunderOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops once the steps under way are applied. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await Promise.all(this.inFlight);
  }

  /** Takes as many due payments as there are free slots and starts a step of each. Returns how many it took. */
  async once(): Promise<number> {
    const free = this.o.concurrency - this.inFlight.size;
    if (free <= 0) return 0;
    const ids = await this.o.refunds.claim(free, this.o.leaseMs);
    for (const id of ids) {
      const p: Promise<void> = this.step(id)
        .catch((err: unknown) => {
          // Its lease lapses and it comes due again; nothing was settled.
          this.o.log.warn({ paymentId: id, err: err instanceof Error ? err.message : String(err) }, 'refund step failed; it comes due again');
        })
        .finally(() => {
          this.inFlight.delete(p);
          // A slot is free: look for due payments now rather than at the next tick.
          this.wake?.();
        });
      this.inFlight.add(p);
    }
    return ids.length;
  }

  /** One step of one payment's refunds. */
  async step(paymentId: string): Promise<void> {
    this.steps++;
    const state = await this.o.refunds.read(paymentId);
    if (!state) return this.o.refunds.idle(paymentId);
    let head: Refund | undefined;
    if (state.refundPhase === '') head = state.refunds.find((r) => r.kind === 'refund' && r.status === 'PENDING');
    else head = state.refunds.find((r) => r.id === state.inFlight);
    if (!head) return this.o.refunds.idle(paymentId);
    const known = new Set(state.refunds.filter((r) => r.status === 'SUCCEEDED' && r.pgTransactionKey).map((r) => r.pgTransactionKey!));
    const retries = this.retries.get(head.id) ?? 0;
    const ctx = {
      amount: head.amount, known, retries, sentAt: state.sentAt, now: Date.now(), settleMs: this.o.settleMs,
      backoffBaseMs: this.o.backoffBaseMs, backoffMaxMs: this.o.backoffMaxMs,
    };
    if (state.refundPhase === '') {
      const r = await this.o.pg.cancel(state.paymentKey, { cancelReason: head.reason, cancelAmount: head.amount }, {
        idempotencyKey: refundKey(head.id),
        guard: { refund: { paymentId, cancelId: head.id, op: 'send' } },
      });
      if (r.refused) return this.heldBack(paymentId, r.refusal.reason, head.id);
      return this.apply(paymentId, head, 'cancel', r.outcome, afterRefundCancel(r.outcome, { ...ctx, sentAt: Date.now() - r.report.latencyMs }), r.report.latencyMs);
    }
    const r = await this.o.pg.inquire(state.paymentKey, { guard: { refund: { paymentId, cancelId: head.id, op: 'check' } } });
    if (r.refused) return this.heldBack(paymentId, r.refusal.reason);
    return this.apply(paymentId, head, 'inquire', r.outcome, afterRefundCheck(r.outcome, ctx), r.report.latencyMs);
  }

  private async heldBack(paymentId: string, reason: Refusal['reason'], sending?: string): Promise<void> {
    if (reason === 'unreplicated') {
      // The guard marked the cancel in flight and no replica confirmed the mark: it was not sent,
      // so the mark is taken back (as for a cancel the PG did not process) and it goes later.
      if (sending) {
        const step = { do: 'retry', delayMs: UNREPLICATED_RETRY_MS } as const;
        if (await this.o.refunds.settle(paymentId, sending, step, { call: 'cancel', outcome: 'not_sent:unreplicated', ms: 0 })) return;
      }
      return this.o.refunds.later(paymentId, UNREPLICATED_RETRY_MS);
    }
    // The breaker: wait and come back. The guard's phase: another step moved it; look again soon.
    await this.o.refunds.later(paymentId, reason === 'breaker' ? this.o.breakerWaitMs : 0);
  }

  private async apply(paymentId: string, head: Refund, call: 'cancel' | 'inquire', outcome: PgOutcome, step: RefundStep, latencyMs: number): Promise<void> {
    const event = { call, outcome: outcome.kind === 'failed' || outcome.kind === 'declined' ? `${outcome.kind}:${outcome.code}` : outcome.kind, ms: Math.round(latencyMs) };
    if ((step.do === 'check' && step.alert) || (step.do === 'fail' && step.failure.code === 'NOT_FOUND_AT_PG')) {
      this.o.log.warn({ alert: true, paymentId, cancelId: head.id, ...event, reason: step.do === 'check' ? step.alert : step.failure.code }, 'refund answer needs attention');
    }
    if (step.do === 'succeed' || step.do === 'fail') this.retries.delete(head.id);
    else this.retries.set(head.id, (this.retries.get(head.id) ?? 0) + 1);
    const applied = await this.o.refunds.settle(paymentId, head.id, step, event);
    if (!applied) this.o.log.debug({ paymentId, cancelId: head.id }, 'refund step was stale');
  }

  private async run(): Promise<void> {
    while (this.running) {
      let pause = this.o.tickMs;
      try {
        // Fill the free slots with due payments; a step that ends wakes this loop to fill its slot.
        await this.once();
      } catch (err) {
        this.o.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'refunds: could not take due payments; trying again');
        pause = 1_000;
      }
      if (pause > 0 && this.running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pause);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
    }
  }
}
