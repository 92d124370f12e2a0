/**
 * `POST /v1/payments/{paymentKey}/cancel`: a full cancel, safe to repeat. It answers at once (the
 * contract puts latency on approvals only), and it is what makes a running approval answer
 * `403 CANCELED_DURING_PROCESSING`: the confirm checks the record's status when it commits.
 */
import { nowMs } from './clock.ts';
import { errorAnswer, okAnswer } from './http-io.ts';
import type { Answer } from './idempotency.ts';
import { paymentJson } from './ledger.ts';
import type { SimulatorState } from './state.ts';

/** Parses a cancel body; null means 400 INVALID_REQUEST. */
export function parseCancelReason(text: string): string | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { cancelReason } = value as Record<string, unknown>;
  if (typeof cancelReason !== 'string' || cancelReason.length > 200) return null;
  return cancelReason;
}

/**
 * Cancels a payment. DONE returns the money (CANCELED row); IN_PROGRESS voids the approval;
 * CANCELED and ABORTED answer as they are; an unknown paymentKey answers `NOT_FOUND`, which is
 * neither recorded nor stored, so a confirm reaching the PG later is processed normally.
 */
export function cancelPayment(state: SimulatorState, paymentKey: string, bodyText: string): Answer {
  const reason = parseCancelReason(bodyText);
  if (reason === null) return errorAnswer(400, 'INVALID_REQUEST', 'The request body is invalid.');
  const record = state.ledger.byPaymentKey(paymentKey);
  if (record === undefined) {
    return okAnswer(JSON.stringify({ paymentKey, status: 'NOT_FOUND', cancels: [] }), false);
  }
  state.ledger.cancel(record, reason, nowMs());
  return okAnswer(paymentJson(record));
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
