/**
 * Cancels and refunds a merchant asks for (`POST /v1/payments/{id}/cancel`): what one is, and what
 * Sluice does after each PG answer to it. Pure, like decide.ts: the worker feeds in the outcome
 * and the payment's refunds, and applies the step in one Lua script (store `refund.lua`).
 *
 * The money rule these decisions keep: **a cancel is sent to the PG at most once per key, and a
 * cancel whose outcome is not known is settled by querying the payment, never by sending it
 * again.** The contract does not store a 5xx or a timed-out answer, so the same key sent again
 * after one of them is processed afresh: if the first had committed, the repeat refunds twice.
 * One cancel per payment is in flight at a time, so a new entry in the PG's `cancels` list that
 * Sluice does not know yet can only be the one in flight.
 */
import { CANCEL_REFUSALS, type PgOutcome, type PgPayment } from './pg-outcome.ts';
import { backoffMs, type Failure } from './decide.ts';

/** A merchant cancel's state: waiting or in flight, done at the PG, or refused or not done. */
export const REFUND_STATUSES = ['PENDING', 'SUCCEEDED', 'FAILED'] as const;
/** A merchant cancel's state. */
export type RefundStatus = (typeof REFUND_STATUSES)[number];

/**
 * A merchant cancel as stored on the payment (field `refunds`, JSON) and shown in its `cancels`:
 * - `void`: a full cancel of a payment being confirmed; it rides the payment's own cancel path
 *   (the PG voids the approval under way) and is settled when the payment becomes final;
 * - `refund`: a cancel of (part of) an approved payment's balance, sent by the refunder.
 */
export interface Refund {
  id: string;
  kind: 'void' | 'refund';
  amount: number;
  reason: string;
  status: RefundStatus;
  failure: Failure | null;
  createdAt: number;
  completedAt: number | null;
  /** The PG's transactionKey of this cancel, once it is known to have committed. */
  pgTransactionKey: string | null;
}

/** The refunds of a payment, from its stored field (an absent or unreadable one is none). */
export function parseRefunds(field: string | undefined | null): Refund[] {
  if (!field) return [];
  try {
    const v = JSON.parse(field) as unknown;
    return Array.isArray(v) ? (v as Refund[]) : [];
  } catch {
    return [];
  }
}

/** A PG Payment's cancels, as the contract shapes them. */
export interface PgCancel {
  cancelAmount?: number;
  transactionKey?: string | null;
  canceledAt?: string;
}

/** The cancels in a PG Payment body, if it has a readable list. */
export function pgCancelsOf(p: PgPayment | undefined): PgCancel[] | null {
  const list = (p as { cancels?: unknown } | undefined)?.cancels;
  return Array.isArray(list) ? (list as PgCancel[]) : null;
}

/**
 * The PG's record of the cancel in flight: a cancel in the PG's list that none of Sluice's
 * settled cancels knows (by transactionKey), for the amount sent. With one cancel in flight per
 * payment it can only be that one. `null`: the PG shows no such cancel (yet).
 */
export function findCancel(p: PgPayment | undefined, known: ReadonlySet<string>, amount: number): PgCancel | null {
  for (const c of pgCancelsOf(p) ?? []) {
    if (c.cancelAmount === amount && !(c.transactionKey && known.has(c.transactionKey))) return c;
  }
  return null;
}

/** What the refunder does next for the cancel in flight. */
export type RefundStep =
  /** The PG holds this cancel: the money went back. */
  | { do: 'succeed'; transactionKey: string | null }
  /** The PG refused it and changed nothing (a stored 4xx), or it is known not to have committed. */
  | { do: 'fail'; failure: Failure }
  /** The outcome is not known: query the payment after `delayMs`, never send the cancel again. */
  | { do: 'check'; delayMs: number; alert?: string }
  /** The PG did not process the request (not sent, 429, 503): send the same cancel again after `delayMs`. */
  | { do: 'retry'; delayMs: number }
  /** 401: our credentials are wrong; wait and try again. */
  | { do: 'halt'; delayMs: number };

/** What a refund decision needs besides the PG's answer. */
export interface RefundContext {
  amount: number;
  /** The transactionKeys of this payment's cancels Sluice already holds as done. */
  known: ReadonlySet<string>;
  /** How many times this step was already tried (backoff). */
  retries: number;
  /** When the cancel went out (epoch ms), and now. */
  sentAt: number;
  now: number;
  /**
   * How long after the cancel went out an answered query that shows no trace of it ends it as
   * FAILED. A slow cancel may still commit inside it; one that commits later is found by
   * reconciliation (a cancel row of the PG's book that Sluice does not hold) and recorded.
   */
  settleMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  random?: () => number;
}

const backoff = (ctx: RefundContext): number => backoffMs(ctx.retries, ctx.backoffBaseMs, ctx.backoffMaxMs, ctx.random);

/** After the cancel itself. Only a stored answer is definite; everything else is settled by a query. */
export function afterRefundCancel(o: PgOutcome, ctx: RefundContext): RefundStep {
  switch (o.kind) {
    case 'approved':
    case 'canceled': {
      // A Payment body: find this cancel in it. A 200 that does not show it is not understood.
      const c = findCancel(o.payment, ctx.known, ctx.amount);
      if (c) return { do: 'succeed', transactionKey: c.transactionKey ?? null };
      return { do: 'check', delayMs: 0, alert: 'cancel answered 200 without the cancel in its list' };
    }
    case 'failed':
      if (CANCEL_REFUSALS.has(o.code)) return { do: 'fail', failure: { code: o.code, message: o.message } };
      return { do: 'check', delayMs: backoff(ctx), alert: `cancel answered ${o.code}` };
    case 'nothing_at_pg':
      // The PG holds no confirm of a payment Sluice holds approved: nothing to refund, and a
      // finding for reconciliation. Not stored by the PG, and changes nothing.
      return { do: 'fail', failure: { code: 'NOT_FOUND_AT_PG', message: 'The PG holds no approval of this payment' } };
    case 'declined':
      return { do: 'fail', failure: { code: 'NOT_CANCELABLE_PAYMENT', message: o.message } };
    case 'not_sent':
      return { do: 'retry', delayMs: backoff(ctx) };
    case 'auth_error':
      return { do: 'halt', delayMs: backoff(ctx) };
    case 'in_progress':
    case 'in_doubt':
      // No answer, a 5xx, a 409 for the same key still processing, or an answer not understood:
      // the cancel may have committed. Ask the PG; never send it again.
      return { do: 'check', delayMs: backoff(ctx), ...(o.kind === 'in_doubt' && o.alert ? { alert: o.reason } : {}) };
    default:
      return assertNever(o);
  }
}

/** After a query of the payment whose cancel's outcome is not known. */
export function afterRefundCheck(o: PgOutcome, ctx: RefundContext): RefundStep {
  const again = (): RefundStep => ({ do: 'check', delayMs: backoff(ctx) });
  switch (o.kind) {
    case 'approved':
    case 'canceled': {
      const c = findCancel(o.payment, ctx.known, ctx.amount);
      if (c) return { do: 'succeed', transactionKey: c.transactionKey ?? null };
      // Not there (yet). A slow cancel may still commit: ask again until the settle time.
      if (ctx.now - ctx.sentAt < ctx.settleMs) return again();
      return { do: 'fail', failure: { code: 'NOT_CANCELED_BY_PG', message: 'The PG shows no trace of this cancel; nothing was refunded' } };
    }
    default:
      // No definite Payment body (silence, a 5xx, 404 for a payment Sluice holds approved, an
      // unknown status): nothing is learnt. Ask again; silence never ends a cancel as FAILED.
      return again();
  }
}

function assertNever(x: never): never {
  throw new Error(`unexpected value ${JSON.stringify(x)}`);
}
