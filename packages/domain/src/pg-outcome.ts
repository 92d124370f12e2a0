/**
 * The outcome table: every result of every PG call is classified here, and the class decides
 * what happens next. Call sites never look at HTTP codes. The README's "Outcome table" section
 * is this file in prose; keep the two in step.
 *
 * Contract: the external PG's v1 API (Toss Payments-shaped). Codes and statuses this file does
 * not know are read as "not known" (in doubt, plus an alert), never as a final state.
 */

/** A Payment object as the PG returns it. Only the fields Sluice reads are typed. */
export interface PgPayment {
  paymentKey: string;
  orderId?: string;
  status: string;
  totalAmount?: number;
  /** What is still charged: totalAmount less every cancel (refunds.ts reads the cancels). */
  balanceAmount?: number;
  approvedAt?: string | null;
  transactionKey?: string | null;
  failure?: { code?: string; message?: string } | null;
}

/** The PG's four calls. */
export type PgCall = 'confirm' | 'inquire' | 'cancel' | 'transactions';

/** What the transport saw, before any interpretation. Produced by pg-client only. */
export type PgRaw =
  /** The PG cannot have received the request (connect refused/timeout, no pooled connection). */
  | { transport: 'not_sent'; reason: string }
  /** The request may have reached the PG, but no answer came (read timeout, dropped connection). */
  | { transport: 'no_answer'; reason: string }
  | { transport: 'answered'; httpStatus: number; body: unknown };

/** The classes of the outcome table. */
export type PgOutcome =
  | { kind: 'approved'; payment: PgPayment }
  | { kind: 'declined'; code: string; message: string }
  | { kind: 'canceled'; payment?: PgPayment }
  | { kind: 'failed'; code: string; message: string; ourBug: boolean }
  /** The PG is still working on it (409 IDEMPOTENT_REQUEST_PROCESSING, or status IN_PROGRESS). */
  | { kind: 'in_progress' }
  /**
   * The PG may or may not have acted. `alert` marks answers Sluice does not understand;
   * `serverError` marks a 5xx (from the PG or anything in front of it), which says nothing about
   * the payment and counts as silence, like a timeout. `unread` marks a request the PG may not
   * have read yet (no answer came, or a 5xx that is not one of the PG's own answers, e.g. from a
   * proxy): a confirm like that can still reach the PG, and charge, later.
   */
  | { kind: 'in_doubt'; reason: string; alert: boolean; serverError?: true; unread?: true }
  /** The PG holds nothing for this payment (inquiry 404, cancel NOT_FOUND). */
  | { kind: 'nothing_at_pg' }
  /** The PG did not process the request; the same request may be sent again. */
  | { kind: 'not_sent'; reason: string; alert: boolean }
  /** 401: our secret key is wrong. Stop sending; payments wait. */
  | { kind: 'auth_error' };

/** Declines: final, never retried. The payment is `ABORTED` at the PG. */
export const DECLINE_CODES = new Set([
  'REJECT_CARD_COMPANY',
  'INVALID_CARD_EXPIRATION',
  'EXCEED_MAX_AMOUNT',
  'NOT_ENOUGH_BALANCE',
]);

/** The "not known" answers of confirm: the PG may or may not have charged. */
const AMBIGUOUS_CODES = new Set([
  'FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING',
  'FAILED_INTERNAL_SYSTEM_PROCESSING',
  // 502 PROVIDER_ERROR: the contract lists it with the 500s as "not known". A repeat with the
  // same key would also be safe (unstored answers are processed afresh and never charge twice),
  // but an inquiry is read-only and cannot start a second approval while the first may still be
  // running; when the PG holds nothing, the inquiry says so and we re-confirm with the same key.
  'PROVIDER_ERROR',
]);

/** The cancel refusals of the contract: definite, stored, and nothing changed at the PG. */
export const CANCEL_REFUSALS = new Set(['NOT_CANCELABLE_AMOUNT', 'NOT_CANCELABLE_PAYMENT', 'ALREADY_CANCELED_PAYMENT']);

function codeOf(body: unknown): { code: string; message: string } {
  if (typeof body === 'object' && body !== null) {
    const b = body as Record<string, unknown>;
    return {
      code: typeof b.code === 'string' ? b.code : 'UNKNOWN',
      message: typeof b.message === 'string' ? b.message : '',
    };
  }
  return { code: 'UNKNOWN', message: '' };
}

function asPayment(body: unknown): PgPayment | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as Record<string, unknown>;
  return typeof b.status === 'string' ? (b as unknown as PgPayment) : undefined;
}

/** Classifies a Payment body by its `status`, never by the HTTP code. */
export function classifyPaymentStatus(p: PgPayment): PgOutcome {
  switch (p.status) {
    case 'DONE':
    // Approved, then part of it cancelled: still approved, with a smaller balance (refunds.ts).
    case 'PARTIAL_CANCELED':
      return { kind: 'approved', payment: p };
    case 'ABORTED':
      return {
        kind: 'declined',
        code: p.failure?.code ?? 'ABORTED',
        message: p.failure?.message ?? 'The PG aborted the payment',
      };
    case 'CANCELED':
      return { kind: 'canceled', payment: p };
    case 'IN_PROGRESS':
      return { kind: 'in_progress' };
    case 'NOT_FOUND':
      return { kind: 'nothing_at_pg' };
    default:
      return { kind: 'in_doubt', reason: `unknown payment status ${p.status}`, alert: true };
  }
}

/** The outcome table. `call` matters only where the contract gives one code two meanings. */
export function classify(call: PgCall, raw: PgRaw): PgOutcome {
  if (raw.transport === 'not_sent') return { kind: 'not_sent', reason: raw.reason, alert: false };
  if (raw.transport === 'no_answer') return { kind: 'in_doubt', reason: raw.reason, alert: false, unread: true };

  const { httpStatus, body } = raw;
  if (httpStatus >= 200 && httpStatus < 300) {
    const p = asPayment(body);
    if (!p) return { kind: 'in_doubt', reason: `unreadable ${httpStatus} body`, alert: true };
    // The contract has a cancel of an approval under way answer CANCELED; IN_PROGRESS from a
    // cancel is not in it, and, stored, it would be replayed to every repeat.
    if (call === 'cancel' && p.status === 'IN_PROGRESS') return { kind: 'in_doubt', reason: 'cancel answered IN_PROGRESS', alert: true };
    return classifyPaymentStatus(p);
  }

  const { code, message } = codeOf(body);
  switch (httpStatus) {
    case 401:
      return { kind: 'auth_error' };
    case 429:
      // Must never happen: the permit gate exists to prevent it. Not processed by the PG.
      return { kind: 'not_sent', reason: 'TOO_MANY_REQUESTS', alert: true };
    case 503:
      // TOO_MANY_CONNECTIONS (or any 503): answered and closed, not processed.
      return { kind: 'not_sent', reason: code === 'UNKNOWN' ? 'HTTP_503' : code, alert: true };
    case 413:
      return { kind: 'failed', code: 'PAYLOAD_TOO_LARGE', message, ourBug: true };
    case 409:
      if (code === 'IDEMPOTENT_REQUEST_PROCESSING') return { kind: 'in_progress' };
      break;
    case 404:
      if (code === 'NOT_FOUND_PAYMENT_SESSION') return { kind: 'failed', code, message, ourBug: false };
      if (code === 'NOT_FOUND_PAYMENT') return { kind: 'nothing_at_pg' };
      break;
    case 403:
      if (code === 'CANCELED_DURING_PROCESSING') return { kind: 'canceled' };
      if (DECLINE_CODES.has(code)) return { kind: 'declined', code, message };
      break;
    case 400:
      if (code === 'ALREADY_PROCESSED_PAYMENT') {
        return { kind: 'in_doubt', reason: code, alert: call !== 'confirm' };
      }
      if (code === 'DUPLICATED_ORDER_ID') return { kind: 'failed', code, message, ourBug: false };
      // A cancel the PG refused, having changed nothing (a stored answer): above the balance, a
      // part of a payment being approved or aborted, a part of one already cancelled.
      if (call === 'cancel' && CANCEL_REFUSALS.has(code)) return { kind: 'failed', code, message, ourBug: false };
      if (code === 'INVALID_REQUEST' || code === 'INVALID_IDEMPOTENCY_KEY') {
        return { kind: 'failed', code, message, ourBug: true };
      }
      break;
    default:
      if (httpStatus >= 500) {
        const reason = code === 'UNKNOWN' ? `HTTP_${httpStatus}` : code;
        // The PG's own 500/502 codes say it read the request; any other 5xx may not.
        if (AMBIGUOUS_CODES.has(code)) return { kind: 'in_doubt', reason, alert: false, serverError: true };
        return { kind: 'in_doubt', reason, alert: true, serverError: true, unread: true };
      }
  }
  return { kind: 'in_doubt', reason: `unknown answer ${httpStatus} ${code}`, alert: true };
}

/**
 * The read timeouts of pg-client: `READ_TIMEOUT` is one at the adaptive value, below its upper
 * bound (the PG is slow but answers most calls in time); `UND_ERR_HEADERS_TIMEOUT` is one at the
 * upper bound (PG_HEADERS_TIMEOUT_MS), which a PG that answers does not reach.
 */
export const READ_TIMEOUT = { adaptive: 'READ_TIMEOUT', atMax: 'UND_ERR_HEADERS_TIMEOUT' } as const;

/**
 * Reasons a call was not sent that lie on Sluice's side, not the PG's: no pooled connection freed
 * up in time, or every send slot went late. They say nothing about the PG.
 */
export const LOCAL_NOT_SENT = new Set(['pool_wait_timeout', 'late_permits']);

/**
 * Whether a result tells the circuit breaker that the PG is failing: nothing came back, a 5xx
 * (the connection cap's 503 included), or a 401 (nothing will work until the secret key is
 * fixed, so the breaker should hold the payments back). Declines, other 4xx and 429 are answers
 * from a working PG; a call held back on our side ({@link LOCAL_NOT_SENT}) is no news of it.
 * A read timeout at the adaptive value is not a failure either: the PG is slow on this call but
 * answers the rest; a PG that stops answering drives the timeout to its upper bound, and those
 * timeouts are failures.
 */
export function isPgFailure(raw: PgRaw): boolean {
  if (raw.transport === 'not_sent' && LOCAL_NOT_SENT.has(raw.reason)) return false;
  if (raw.transport === 'no_answer' && raw.reason === READ_TIMEOUT.adaptive) return false;
  return raw.transport !== 'answered' || raw.httpStatus >= 500 || raw.httpStatus === 401;
}
