/**
 * What Sluice does next after each PG answer: the action column of the outcome table.
 * Pure: the worker feeds it the outcome and the payment's counters, and carries the step out.
 */
import type { Config } from '@sluice/config';
import type { FinalStatus } from './status.ts';
import { lateConfirmUntil } from './late-confirm.ts';
import type { PgOutcome, PgPayment } from './pg-outcome.ts';

/** A final failure's code and message. */
export interface Failure {
  code: string;
  message: string;
}

/** What the PG said of an approval: its transaction key and time. */
export interface PgResult {
  transactionKey?: string | null;
  approvedAt?: string | null;
}

/** What Sluice does next after a PG answer. */
export type Step =
  | { do: 'finalize'; status: FinalStatus; failure?: Failure; pg?: PgResult }
  /** Send the same call again with the same Idempotency-Key after `delayMs`. */
  | { do: 'retry'; delayMs: number; alert?: string }
  /** Move to (or stay in) `inquiring`, and ask the PG after `delayMs`. */
  | { do: 'inquire'; delayMs: number; answered: boolean; alert?: string }
  /** The PG holds nothing: confirm again with the same key (bounded). */
  | { do: 'reconfirm' }
  /** Out of answered inquiries: cancel, which voids even an approval under way. */
  | { do: 'cancel' }
  /** 401: our credentials are wrong. Nothing is sent; the payment waits. */
  | { do: 'halt'; delayMs: number };

/** How payments in doubt are resolved: the inquiry schedule, the cancel deadline, backoff and the late-confirm horizon. */
export interface ResolutionPolicy {
  /**
   * How long after a confirm was sent Sluice keeps asking a payment the PG answers IN_PROGRESS
   * (or with a status it does not know) before it cancels it. Time, not a count of inquiries, so
   * that a quicker schedule never voids approvals that are merely slow (the contract: "rarely
   * 30 s or more").
   */
  cancelAfterMs: number;
  /** Re-confirms after the PG said it holds nothing, before Sluice cancels instead. */
  maxReconfirms: number;
  /**
   * The longest wait before the first inquiry of a payment in doubt. The first look comes after
   * the PG's typical confirm latency (its observed median), when that is shorter.
   */
  firstInquiryDelayMs: number;
  /**
   * How the inquiries of a payment the PG still works on spread out: each comes when the time
   * since the confirm has grown by this factor (2: a confirm sent 3 s ago is asked again at
   * 6 s, 12 s, 24 s, 48 s), so a long approval costs a few inquiries, not one per backoff step.
   * 2.5 cost 1.45 PG calls per payment on the bench's slow profile and a p99 to final of 10.3 s;
   * 2 cost 1.54 and 9.8 s (the target is ≤ 1.6 calls and ≤ 10 s).
   */
  inquiryGrowth: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /**
   * How long after intake a confirm that got no answer may still charge: the PG's payment
   * session (30 minutes from the customer's authorisation, which came before the intake), plus
   * room for the two clocks. After it, the PG refuses any confirm of the payment.
   */
  lateConfirmHorizonMs: number;
}

/** The policy from the parsed config (the RESOLVE_*, RETRY_BACKOFF_* and LATE_CONFIRM_HORIZON_MS variables). */
export function resolutionPolicyOf(c: Config): ResolutionPolicy {
  return {
    cancelAfterMs: c.RESOLVE_CANCEL_AFTER_MS,
    maxReconfirms: c.RESOLVE_MAX_RECONFIRMS,
    firstInquiryDelayMs: c.RESOLVE_FIRST_INQUIRY_DELAY_MS,
    inquiryGrowth: c.RESOLVE_INQUIRY_GROWTH,
    backoffBaseMs: c.RETRY_BACKOFF_BASE_MS,
    backoffMaxMs: c.RETRY_BACKOFF_MAX_MS,
    lateConfirmHorizonMs: c.LATE_CONFIRM_HORIZON_MS,
  };
}

/** The policy with the config's defaults, for tests. */
export const DEFAULT_RESOLUTION_POLICY: ResolutionPolicy = {
  cancelAfterMs: 60_000,
  maxReconfirms: 2,
  firstInquiryDelayMs: 1_000,
  inquiryGrowth: 2,
  backoffBaseMs: 1_000,
  backoffMaxMs: 30_000,
  lateConfirmHorizonMs: 31 * 60_000,
};

/**
 * Exponential backoff with equal jitter: attempt 0 → [base/2, base], 1 → [base, 2·base], …,
 * capped at `max`. `random` is injected so that tests are exact.
 */
export function backoffMs(attempt: number, base: number, max: number, random: () => number = Math.random): number {
  const d = Math.min(max, base * 2 ** Math.max(0, attempt));
  return Math.round(d / 2 + (random() * d) / 2);
}

function final(status: FinalStatus, failure?: Failure, payment?: PgPayment): Step {
  const step: Step = { do: 'finalize', status };
  if (failure) step.failure = failure;
  if (payment) step.pg = { transactionKey: payment.transactionKey ?? null, approvedAt: payment.approvedAt ?? null };
  return step;
}

/** What a decision needs besides the answer: the policy and the payment's counts and times. */
export interface StepContext {
  policy: ResolutionPolicy;
  /** How many times this same call has already been retried (for backoff). */
  retries: number;
  reconfirms: number;
  /** Now and the payment's intake time (epoch ms). */
  now: number;
  createdAt: number;
  /**
   * Whether some confirm try of this payment is not known to have been read by the PG or held
   * back before it was written (it got no answer, or its worker died): it may still reach the PG.
   */
  unreadConfirm: boolean;
  /** How many times Sluice has decided to cancel this payment. Once it has, it never confirms again. */
  cancels: number;
  /** When the payment's latest confirm try was sent (epoch ms); null if none was. */
  confirmSentAt: number | null;
  /** The PG's typical confirm latency as Sluice observes it now (ms), if known. */
  typicalConfirmMs: number | null;
  random?: () => number;
}

function backoff(ctx: StepContext, n = ctx.retries): number {
  return backoffMs(n, ctx.policy.backoffBaseMs, ctx.policy.backoffMaxMs, ctx.random);
}

/** The first look at a payment in doubt: after the PG's typical latency, at most the policy's. */
export function firstInquiryDelay(ctx: Pick<StepContext, 'policy' | 'typicalConfirmMs'>): number {
  const typical = ctx.typicalConfirmMs;
  return typical !== null && typical > 0 ? Math.min(Math.round(typical), ctx.policy.firstInquiryDelayMs) : ctx.policy.firstInquiryDelayMs;
}

/**
 * The next look at a payment the PG still works on: when the time since its confirm has grown by
 * `inquiryGrowth`, no sooner than the first look and no later than the backoff cap or the cancel
 * deadline. `null` once the deadline has passed.
 */
export function nextInquiryDelay(ctx: StepContext): number | null {
  const since = ctx.now - (ctx.confirmSentAt ?? ctx.createdAt);
  const left = ctx.policy.cancelAfterMs - since;
  if (left <= 0) return null;
  const grown = (ctx.policy.inquiryGrowth - 1) * since;
  return Math.round(Math.min(Math.max(grown, firstInquiryDelay(ctx)), ctx.policy.backoffMaxMs, left));
}

/** After a confirm. Anything that is not a definite answer goes to inquiry. */
export function afterConfirm(o: PgOutcome, ctx: StepContext): Step {
  switch (o.kind) {
    case 'approved':
      return final('APPROVED', undefined, o.payment);
    case 'declined':
      return final('DECLINED', { code: o.code, message: o.message });
    case 'canceled':
      return final('CANCELED', { code: 'CANCELED_DURING_PROCESSING', message: 'Canceled while the approval was under way' });
    case 'failed':
      return final('FAILED', { code: o.code, message: o.message });
    case 'in_progress':
      return { do: 'inquire', delayMs: firstInquiryDelay(ctx), answered: false };
    case 'in_doubt':
    case 'nothing_at_pg':
      return {
        do: 'inquire',
        delayMs: firstInquiryDelay(ctx),
        answered: false,
        ...(o.kind === 'in_doubt' && o.alert ? { alert: o.reason } : {}),
      };
    case 'not_sent':
      return { do: 'retry', delayMs: backoff(ctx) };
    case 'auth_error':
      return { do: 'halt', delayMs: backoff(ctx) };
    default:
      return assertNever(o);
  }
}

/** After a status inquiry. Only a definite Payment status ends the payment. */
export function afterInquiry(o: PgOutcome, ctx: StepContext): Step {
  const keepAsking = (alert?: string): Step => {
    const delayMs = nextInquiryDelay(ctx);
    if (delayMs === null) return { do: 'cancel' };
    return { do: 'inquire', delayMs, answered: true, ...(alert ? { alert } : {}) };
  };
  switch (o.kind) {
    case 'approved':
      return final('APPROVED', undefined, o.payment);
    case 'declined':
      return final('DECLINED', { code: o.code, message: o.message });
    case 'canceled':
      return final('CANCELED', { code: 'CANCELED', message: 'The PG holds the payment canceled' });
    case 'in_progress':
      return keepAsking();
    case 'nothing_at_pg':
      // After a decision to cancel (and an answer to it that sent us here), never confirm again.
      return ctx.cancels === 0 && ctx.reconfirms < ctx.policy.maxReconfirms ? { do: 'reconfirm' } : { do: 'cancel' };
    case 'in_doubt':
      // An answer we do not understand may lead to the cancel deadline; silence (timeouts, any
      // 5xx, known code or not) never does, so that an outage never rushes payments into cancels.
      return o.alert && !o.serverError ? keepAsking(o.reason) : { do: 'inquire', delayMs: backoff(ctx), answered: false };
    case 'failed':
      // An inquiry has no final failure: a 4xx here is our bug or an unknown answer.
      return keepAsking(`inquiry answered ${o.code}`);
    case 'not_sent':
      return { do: 'inquire', delayMs: backoff(ctx), answered: false };
    case 'auth_error':
      return { do: 'halt', delayMs: backoff(ctx) };
    default:
      return assertNever(o);
  }
}

/**
 * After a cancel. A cancel is repeated (same key, safe by contract) until it is answered, and
 * after "nothing to cancel" while a confirm may still reach the PG.
 */
export function afterCancel(o: PgOutcome, ctx: StepContext): Step {
  switch (o.kind) {
    case 'canceled':
      return final('CANCELED', { code: 'CANCELED_BY_SLUICE', message: 'No final answer from the PG in time; Sluice canceled it' });
    case 'declined':
      return final('DECLINED', { code: o.code, message: o.message });
    case 'nothing_at_pg': {
      // The PG holds no confirm, and does not store this answer: a confirm it reads later is
      // processed normally. A confirm that got no answer may still be on its way (the PG may
      // not have read it yet), so until the payment's session has expired and no confirm can
      // charge, the cancel is repeated (same key), and it voids or refunds one that lands.
      const until = lateConfirmUntil({ unreadConfirm: ctx.unreadConfirm, createdAt: ctx.createdAt, lateConfirmHorizonMs: ctx.policy.lateConfirmHorizonMs });
      if (ctx.now < until) {
        const step: Step = { do: 'retry', delayMs: Math.min(backoff(ctx), until - ctx.now) };
        // One alert when the wait begins, not one per repeat.
        if (ctx.retries === 0) step.alert = 'cancel found nothing, but a confirm that got no answer may still reach the PG: cancel again until it cannot';
        return step;
      }
      return final('FAILED', { code: 'NOT_PROCESSED_BY_PG', message: 'The PG never processed the payment' });
    }
    case 'approved':
      // A cancel that answers DONE is not in the contract: learn the truth by inquiry.
      return { do: 'inquire', delayMs: backoff(ctx), answered: false, alert: 'cancel answered DONE' };
    case 'in_doubt':
      // Silence (no answer, a 5xx) is not stored by the PG: the same cancel is processed afresh.
      if (o.serverError || !o.alert) return { do: 'retry', delayMs: backoff(ctx) };
      // An answer Sluice does not understand (unknown status, unreadable body, unknown code) is
      // stored and would be replayed to every repeat: learn the payment's state by inquiry. The
      // wait grows with each decision to cancel, so that inquiry → cancel → inquiry cycles slow
      // down to one per backoff cap.
      return { do: 'inquire', delayMs: backoff(ctx, ctx.cancels), answered: false, alert: `cancel answered ${o.reason}` };
    case 'failed':
      return { do: 'inquire', delayMs: backoff(ctx, ctx.cancels), answered: false, alert: `cancel answered ${o.code}` };
    case 'in_progress':
    case 'not_sent':
      return { do: 'retry', delayMs: backoff(ctx) };
    case 'auth_error':
      return { do: 'halt', delayMs: backoff(ctx) };
    default:
      return assertNever(o);
  }
}

/** Fails on a value the types say cannot exist (the end of an exhaustive switch). */
export function assertNever(x: never): never {
  throw new Error(`unexpected value ${JSON.stringify(x)}`);
}
