/**
 * The payment driver: one step of a payment's life. It reads the payment's phase, makes the one
 * PG call that phase allows (through the guard), asks the domain what to do with the answer,
 * and applies that atomically. The BullMQ processors only schedule what it returns.
 */
import {
  afterCancel,
  afterConfirm,
  afterInquiry,
  settlesTry,
  unreadConfirm,
  type Phase,
  type PgOutcome,
  type ResolutionPolicy,
  type Step,
  type StepContext,
} from '@sluice/domain';
import type { CallResult } from '@sluice/pg-client';
import type { PaymentRecord, PaymentStore, ReplicaWaiter, Transitions, WriteMark } from '@sluice/store';
import { UNREPLICATED_RETRY_MS, type PgPort, type Refusal } from './sender/pg-port.ts';
import type { Logger } from 'pino';

/** What the processor does next. */
export type Next =
  /** Nothing more for this job: the payment is final, or another job owns it now. */
  | { kind: 'done'; phase: Phase | 'missing' }
  /** Run this payment's resolve job (inquiry, re-confirm, cancel) after `delayMs`. */
  | { kind: 'resolve'; delayMs: number }
  /** Run the same step again after `delayMs` (not sent, unanswered cancel, 401). */
  | { kind: 'again'; delayMs: number }
  /** The circuit breaker held the call back. */
  | { kind: 'breaker' };

/** What the driver needs: the PG port, the store, the transitions, the resolution policy and a logger. */
export interface DriverDeps {
  pg: PgPort;
  store: PaymentStore;
  transitions: Transitions;
  policy: ResolutionPolicy;
  log: Logger;
  /**
   * REDIS_WAIT_REPLICAS > 0: a final state is on the replicas before its job ends (on the
   * connection `store` and `transitions` write on). Cancels wait in their guard (`LocalPg`).
   */
  replicas?: ReplicaWaiter | null;
}

/** The PG Idempotency-Keys: derived from Sluice's globally unique payment id, never from merchant input. */
export const confirmKey = (id: string): string => `sluice.${id}.confirm`;
/** The PG Idempotency-Key of a payment's cancel (one per payment: a full cancel repeated is safe). */
export const cancelKey = (id: string): string => `sluice.${id}.cancel`;


/** Drives one payment one step: the PG call its phase allows, the domain's decision, the step applied. */
export class PaymentDriver {
  constructor(private readonly deps: DriverDeps) {}

  /**
   * One step. `via` says which queue asks: the confirm queue owns `queued`; the resolve queue owns
   * the phases after the first answer (`inquiring`, `canceling`, and a re-`confirming`).
   */
  async step(id: string, via: 'confirm' | 'resolve', retries: number): Promise<Next> {
    const mark = this.deps.replicas?.mark(id);
    const rec = await this.deps.store.get(id);
    if (!rec) return { kind: 'done', phase: 'missing' };
    switch (rec.phase) {
      case 'final':
        // A re-run of a job whose final state was not confirmed on a replica: confirm it now.
        return mark ? this.replicated(mark) : { kind: 'done', phase: 'final' };
      case 'queued':
        return via === 'confirm' ? this.confirm(rec, ['queued', 'confirming'], retries) : { kind: 'done', phase: 'queued' };
      case 'confirming':
        return this.confirm(rec, ['queued', 'confirming'], retries);
      case 'inquiring':
        return via === 'resolve' ? this.inquire(rec, retries) : { kind: 'resolve', delayMs: 0 };
      case 'canceling':
        return via === 'resolve' ? this.cancel(rec, retries) : { kind: 'resolve', delayMs: 0 };
      default:
        return { kind: 'done', phase: rec.phase };
    }
  }

  private async confirm(rec: PaymentRecord, allowed: Phase[], retries: number): Promise<Next> {
    const result = await this.deps.pg.confirm(
      { paymentKey: rec.paymentKey, orderId: rec.orderId, amount: rec.amount },
      {
        idempotencyKey: confirmKey(rec.id),
        requestId: rec.requestId ?? rec.id,
        guard: { paymentId: rec.id, call: 'confirm', allowed, to: 'confirming' },
      },
    );
    if (result.refused) return this.refused(result.refusal);
    const step = afterConfirm(result.outcome, this.ctx(rec, retries));
    // The PG read this try (or it was never written), unless it may still land.
    return this.apply(rec, 'confirming', 'confirm', result, step, settlesTry(result.outcome));
  }

  private async inquire(rec: PaymentRecord, retries: number): Promise<Next> {
    const result = await this.deps.pg.inquire(rec.paymentKey, {
      requestId: rec.requestId ?? rec.id,
      guard: { paymentId: rec.id, call: 'inquire', allowed: ['inquiring'], to: 'inquiring' },
    });
    if (result.refused) return this.refused(result.refusal);
    const step = afterInquiry(result.outcome, this.ctx(rec, retries));
    return this.apply(rec, 'inquiring', 'inquire', result, step);
  }

  private async cancel(rec: PaymentRecord, retries: number): Promise<Next> {
    // The merchant's reason when it asked for this cancel (a `void`), else Sluice's own.
    const asked = rec.refunds.find((r) => r.kind === 'void' && r.status === 'PENDING');
    const result = await this.deps.pg.cancel(rec.paymentKey, { cancelReason: asked?.reason ?? 'No final answer from the PG in time' }, {
      idempotencyKey: cancelKey(rec.id),
      requestId: rec.requestId ?? rec.id,
      guard: { paymentId: rec.id, call: 'cancel', allowed: ['canceling'], to: 'canceling' },
    });
    if (result.refused) return this.refused(result.refusal);
    // "Now" for the horizon is when the cancel went out: its answer speaks of that moment.
    const step = afterCancel(result.outcome, this.ctx(rec, retries, Date.now() - result.report.latencyMs));
    return this.apply(rec, 'canceling', 'cancel', result, step);
  }

  private ctx(rec: PaymentRecord, retries: number, now = Date.now()): StepContext {
    return {
      policy: this.deps.policy, retries, reconfirms: rec.reconfirms, now, createdAt: rec.createdAt,
      unreadConfirm: unreadConfirm(rec), cancels: rec.cancels,
      confirmSentAt: rec.confirmSentAt ?? rec.inDoubtAt,
      typicalConfirmMs: this.deps.pg.stats().readTimeouts.confirm.typicalMs,
    };
  }

  private refused(refusal: Refusal): Next {
    switch (refusal.reason) {
      case 'breaker':
        return { kind: 'breaker' };
      case 'phase':
        return refusal.phase === 'inquiring' || refusal.phase === 'canceling' || refusal.phase === 'confirming'
          ? { kind: 'resolve', delayMs: 0 }
          : { kind: 'done', phase: refusal.phase as Phase };
      case 'expired':
        return { kind: 'done', phase: 'final' };
      case 'unreplicated':
        return { kind: 'again', delayMs: UNREPLICATED_RETRY_MS };
      default:
        return { kind: 'done', phase: 'missing' };
    }
  }

  /**
   * The job of a final payment ends only once the replicas hold the final state: a failover that
   * lost it would send the confirm again (harmless under the same key, lost-writes.test.ts, but
   * a call the PG need not see). Not confirmed in time: the job runs again a little later.
   */
  private async replicated(mark: WriteMark): Promise<Next> {
    if (await this.deps.replicas!.confirm(mark)) return { kind: 'done', phase: 'final' };
    this.deps.log.warn({ alert: true }, 'a final state is not on a replica yet (REDIS_WAIT_REPLICAS); its job runs again');
    return { kind: 'again', delayMs: UNREPLICATED_RETRY_MS };
  }

  private async apply(
    rec: PaymentRecord,
    expected: Phase,
    call: 'confirm' | 'inquire' | 'cancel',
    result: Extract<CallResult<unknown>, { refused: false }>,
    step: Step,
    settlesConfirm = false,
  ): Promise<Next> {
    const event = { call, outcome: describe(result.outcome), step: step.do, ms: Math.round(result.report.latencyMs) };
    const alert = alertOf(result.outcome, step);
    // The request id travels from the intake (X-Request-Id) through the job to the PG call's
    // own x-request-id header and these lines. No keys, secrets or card data are logged.
    const { holdMs, timeoutMs, gateWaitMs } = result.report;
    const fields = {
      paymentId: rec.id, requestId: rec.requestId, call, outcome: event.outcome, step: step.do, ms: event.ms,
      holdMs: Math.round(holdMs), timeoutMs, gateWaitMs: Math.round(gateWaitMs),
    };
    if (alert) this.deps.log.warn({ ...fields, alert: true, reason: alert }, 'PG answer needs attention');
    else this.deps.log.debug(fields, 'PG call');
    const mark = step.do === 'finalize' ? this.deps.replicas?.mark(rec.id) : undefined;
    const phase = await this.deps.transitions.apply({ paymentId: rec.id, expected, step, event, settlesConfirm });
    if (phase === null) {
      // The payment is not in the phase this answer was for: another step moved it (a stalled or
      // re-delivered job running alongside, or this very script re-sent after a Redis restart
      // when its first run had applied). That step's job may be gone already, so this job runs
      // again and drives the payment from the phase it is in now (final: nothing to do). A retry
      // or halt keeps its wait: a call that never got past its connection wait never ran the
      // guard, and the payment may still be QUEUED with only this job to send it.
      return { kind: 'again', delayMs: step.do === 'retry' || step.do === 'halt' ? step.delayMs : 0 };
    }
    switch (step.do) {
      case 'finalize':
        return mark ? this.replicated(mark) : { kind: 'done', phase: 'final' };
      case 'inquire':
        return { kind: 'resolve', delayMs: step.delayMs };
      case 'reconfirm':
      case 'cancel':
        return { kind: 'resolve', delayMs: 0 };
      case 'retry':
      case 'halt':
        return { kind: 'again', delayMs: step.delayMs };
    }
  }
}

function describe(outcome: PgOutcome): string {
  switch (outcome.kind) {
    case 'declined':
    case 'failed':
      return `${outcome.kind}:${outcome.code}`;
    case 'in_doubt':
    case 'not_sent':
      return `${outcome.kind}:${outcome.reason}`;
    default:
      return outcome.kind;
  }
}

function alertOf(outcome: PgOutcome, step: Step): string | null {
  if (outcome.kind === 'auth_error') return 'PG answered 401: check PG_SECRET_KEY';
  if ((outcome.kind === 'in_doubt' || outcome.kind === 'not_sent') && outcome.alert) return outcome.reason;
  if (outcome.kind === 'failed' && outcome.ourBug) return `PG rejected our request: ${outcome.code}`;
  if ((step.do === 'inquire' || step.do === 'retry') && step.alert) return step.alert;
  return null;
}
