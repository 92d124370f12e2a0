/**
 * `POST /v1/payments/{paymentKey}/cancel`: a full or partial cancel. It answers at once (the
 * contract puts latency on approvals only), and it is what makes a running approval answer
 * `403 CANCELED_DURING_PROCESSING`: the confirm checks the record's status when it commits.
 */
import { nowMs } from './clock.ts';
import { errorAnswer, okAnswer } from './http-io.ts';
import type { Answer } from './idempotency.ts';
import { balanceOf, paymentJson } from './ledger.ts';
import type { SimulatorState } from './state.ts';

/** A cancel's body: a reason, and an amount for a partial cancel (none: the whole balance). */
export interface CancelRequest {
  cancelReason: string;
  cancelAmount?: number;
}

/** Parses a cancel body; null means 400 INVALID_REQUEST. Lengths in UTF-16 code units. */
export function parseCancelRequest(text: string): CancelRequest | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { cancelReason, cancelAmount } = value as Record<string, unknown>;
  if (typeof cancelReason !== 'string' || cancelReason.length > 200) return null;
  if (cancelAmount === undefined) return { cancelReason };
  if (typeof cancelAmount !== 'number' || !Number.isSafeInteger(cancelAmount) || cancelAmount <= 0) return null;
  return { cancelReason, cancelAmount };
}

/**
 * Cancels a payment, in whole or in part, as the contract's cancel section says:
 * - DONE or PARTIAL_CANCELED: returns `cancelAmount` (default: the whole balance) to the card;
 *   more than the balance is `400 NOT_CANCELABLE_AMOUNT` and changes nothing;
 * - IN_PROGRESS: a full cancel voids the approval under way; a partial one is
 *   `400 NOT_CANCELABLE_PAYMENT`;
 * - CANCELED or ABORTED: a full cancel answers the payment as it is; a partial one is
 *   `400 ALREADY_CANCELED_PAYMENT` or `400 NOT_CANCELABLE_PAYMENT`;
 * - unknown paymentKey: `NOT_FOUND`, neither recorded nor stored, so a confirm reaching the PG
 *   later is processed normally.
 * A new Idempotency-Key is a new cancel: nothing here compares it with earlier cancels.
 */
export function cancelPayment(state: SimulatorState, paymentKey: string, bodyText: string): Answer {
  const request = parseCancelRequest(bodyText);
  if (request === null) return errorAnswer(400, 'INVALID_REQUEST', 'The request body is invalid.');
  const record = state.ledger.byPaymentKey(paymentKey);
  if (record === undefined) {
    return okAnswer(JSON.stringify({ paymentKey, status: 'NOT_FOUND', cancels: [] }), false);
  }
  const { cancelReason, cancelAmount } = request;
  switch (record.status) {
    case 'DONE':
    case 'PARTIAL_CANCELED': {
      const balance = balanceOf(record);
      const amount = cancelAmount ?? balance;
      if (amount > balance) return errorAnswer(400, 'NOT_CANCELABLE_AMOUNT', 'The amount exceeds the balance that can be canceled.');
      state.ledger.cancel(record, cancelReason, amount, nowMs());
      return okAnswer(paymentJson(record));
    }
    case 'IN_PROGRESS':
      if (cancelAmount !== undefined && cancelAmount !== record.amount) {
        return errorAnswer(400, 'NOT_CANCELABLE_PAYMENT', 'A payment being approved can only be canceled in full.');
      }
      state.ledger.cancel(record, cancelReason, record.amount, nowMs());
      return okAnswer(paymentJson(record));
    case 'CANCELED':
      if (cancelAmount !== undefined) return errorAnswer(400, 'ALREADY_CANCELED_PAYMENT', 'The payment is already canceled.');
      return okAnswer(paymentJson(record));
    case 'ABORTED':
      if (cancelAmount !== undefined) return errorAnswer(400, 'NOT_CANCELABLE_PAYMENT', 'An aborted payment cannot be canceled.');
      return okAnswer(paymentJson(record));
  }
}

/**
 * A cancel with the simulator's cancel faults, drawn once per cancel against the knobs:
 * - `cancelSlowRate`: processed `cancelSlowMs` late (a repeat with the same key meanwhile gets 409;
 *   a query meanwhile shows no cancel yet), then committed and answered;
 * - `cancelCommitErrorRate`: committed, then answered `500 FAILED_INTERNAL_SYSTEM_PROCESSING`;
 * - `cancelDropRate`: committed, then the connection is dropped without an answer.
 * Neither of the last two answers is stored (the contract: a 5xx or a timed-out answer), so the
 * same key sent again is processed afresh and, the first having committed, cancels again.
 */
export async function cancelWithFaults(state: SimulatorState, paymentKey: string, bodyText: string): Promise<{ answer: Answer; delivery: 'now' | 'drop' }> {
  const k = state.knobs;
  const u = state.rng.next();
  if (u < k.cancelSlowRate) {
    const generation = state.generation;
    await state.sleep(k.cancelSlowMs);
    if (state.generation !== generation) return { answer: errorAnswer(500, 'FAILED_INTERNAL_SYSTEM_PROCESSING', 'The simulator was reset.'), delivery: 'drop' };
    return { answer: cancelPayment(state, paymentKey, bodyText), delivery: 'now' };
  }
  const answer = cancelPayment(state, paymentKey, bodyText);
  if (u < k.cancelSlowRate + k.cancelCommitErrorRate) {
    return { answer: errorAnswer(500, 'FAILED_INTERNAL_SYSTEM_PROCESSING', 'An internal error occurred.'), delivery: 'now' };
  }
  if (u < k.cancelSlowRate + k.cancelCommitErrorRate + k.cancelDropRate) return { answer: { ...answer, store: false }, delivery: 'drop' };
  return { answer, delivery: 'now' };
}

/** `GET /v1/payments/{paymentKey}`: 404 NOT_FOUND_PAYMENT when the PG holds no confirm for it. */
export function inquireByPaymentKey(state: SimulatorState, paymentKey: string): Answer {
  const record = state.ledger.byPaymentKey(paymentKey);
  return record === undefined ? notFoundPayment() : okAnswer(paymentJson(record));
}

/** `GET /v1/payments/orders/{orderId}`. */
export function inquireByOrderId(state: SimulatorState, orderId: string): Answer {
  const record = state.ledger.byOrderId(orderId);
  return record === undefined ? notFoundPayment() : okAnswer(paymentJson(record));
}

function notFoundPayment(): Answer {
  return errorAnswer(404, 'NOT_FOUND_PAYMENT', 'The PG holds no confirm for this payment.');
}
