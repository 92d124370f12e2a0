/**
 * `POST /v1/payments/confirm` past the idempotency store: validation, session, the
 * same-key / other-key rules, then the approval itself, which runs for its latency and commits
 * (or not) before the answer is built. The answer's delivery (now, late, dropped) is the
 * caller's job, so the charge always happens at the same moment whatever the network does.
 */
import { nowMs } from './clock.ts';
import { errorAnswer, okAnswer } from './http-io.ts';
import type { Answer } from './idempotency.ts';
import { paymentJson, type PaymentRecord } from './ledger.ts';
import { drawScenario, forcedScenario, planFor, type ConfirmPlan } from './scenario.ts';
import type { SimulatorState } from './state.ts';

/** A confirm body that passed validation. */
export interface ConfirmBody {
  paymentKey: string;
  orderId: string;
  amount: number;
}

/** What the confirm answers and how that answer travels. */
export interface ConfirmResult {
  answer: Answer;
  delivery: ConfirmPlan['delivery'];
}

const ORDER_ID = /^[A-Za-z0-9_-]{6,64}$/;

type CodeAndMessage = readonly [code: string, message: string];

const DECLINES: readonly [CodeAndMessage, ...CodeAndMessage[]] = [
  ['REJECT_CARD_COMPANY', 'The card company rejected the payment.'],
  ['INVALID_CARD_EXPIRATION', 'The card expiration date is invalid.'],
  ['EXCEED_MAX_AMOUNT', 'The amount exceeds the card limit.'],
  ['NOT_ENOUGH_BALANCE', 'The balance is not enough.'],
];

const AMBIGUOUS: readonly [CodeAndMessage, ...CodeAndMessage[]] = [
  ['FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING', 'The payment failed for an internal reason.'],
  ['FAILED_INTERNAL_SYSTEM_PROCESSING', 'An internal system error occurred.'],
];

/** Parses and validates a confirm body; null means 400 INVALID_REQUEST. */
export function parseConfirmBody(text: string): ConfirmBody | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { paymentKey, orderId, amount } = value as Record<string, unknown>;
  if (typeof paymentKey !== 'string' || paymentKey.length === 0 || paymentKey.length > 200) return null;
  if (typeof orderId !== 'string' || !ORDER_ID.test(orderId)) return null;
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount <= 0) return null;
  return { paymentKey, orderId, amount };
}

/** Contract: a confirm repeated after an unstored answer answers as the payment stands. */
function asItStands(record: PaymentRecord): Answer {
  switch (record.status) {
    case 'DONE':
    case 'PARTIAL_CANCELED':
      return okAnswer(paymentJson(record));
    case 'IN_PROGRESS':
      return errorAnswer(409, 'IDEMPOTENT_REQUEST_PROCESSING', 'The first request with this key is still being processed.');
    case 'ABORTED':
      return errorAnswer(403, record.failure?.code ?? 'REJECT_CARD_COMPANY', record.failure?.message ?? 'Declined.');
    case 'CANCELED':
      return canceledDuringProcessing();
  }
}

function canceledDuringProcessing(): Answer {
  return errorAnswer(403, 'CANCELED_DURING_PROCESSING', 'A cancel arrived while the approval was under way.');
}

/**
 * Runs one confirm. `body` is null when the body failed validation; `confirmKey` is the request's
 * Idempotency-Key (null without one). Resolves when the answer exists, i.e. after the approval.
 */
export async function confirmPayment(
  state: SimulatorState,
  body: ConfirmBody | null,
  confirmKey: string | null,
  scenarioHeader: string | undefined,
): Promise<ConfirmResult> {
  if (body === null) return now(errorAnswer(400, 'INVALID_REQUEST', 'The request body is invalid.'));
  const { ledger } = state;
  const forced = forcedScenario(scenarioHeader, body.paymentKey);
  if (forced === 'nosession') return now(errorAnswer(404, 'NOT_FOUND_PAYMENT_SESSION', 'The payment session does not exist.'));
  if (forced === 'expired') return now(errorAnswer(404, 'NOT_FOUND_PAYMENT_SESSION', 'The payment session has expired.'));

  const existing = ledger.byPaymentKey(body.paymentKey);
  if (existing !== undefined) {
    // Same key means our own earlier answer was not stored (5xx, 409, dropped…): answer from the record.
    if (confirmKey !== null && existing.confirmKey === confirmKey) return now(asItStands(existing));
    return now(errorAnswer(400, 'ALREADY_PROCESSED_PAYMENT', 'This payment was already processed.'));
  }
  if (ledger.byOrderId(body.orderId) !== undefined) {
    return now(errorAnswer(400, 'DUPLICATED_ORDER_ID', 'This orderId is already used by another payment.'));
  }

  const knobs = state.knobs;
  const rng = state.rng;
  const plan = planFor(forced ?? drawScenario(knobs, rng));
  // Draw everything at arrival so the sequence of draws follows arrival order only.
  const latencyMs = plan.long
    ? rng.between(knobs.longApprovalMinMs, knobs.longApprovalMaxMs)
    : rng.lognormalMs(knobs.latencyMedianMs, knobs.latencyP99Ms);
  const [declineCode, declineMessage] = rng.pick(DECLINES);
  const [ambiguousCode, ambiguousMessage] = rng.pick(AMBIGUOUS);

  const generation = state.generation;
  const record = ledger.open(body.paymentKey, body.orderId, body.amount, confirmKey);
  if (latencyMs > 0) await state.sleep(latencyMs);
  if (state.generation !== generation) {
    return now(errorAnswer(500, 'FAILED_INTERNAL_SYSTEM_PROCESSING', 'The simulator was reset during processing.'));
  }
  const delivery = plan.delivery;
  if (record.status === 'CANCELED') return { answer: canceledDuringProcessing(), delivery };

  if (plan.effect === 'approve') ledger.commitApproval(record, nowMs());
  else if (plan.effect === 'decline') ledger.abort(record, declineCode, declineMessage);
  else ledger.forget(record);

  switch (plan.answer) {
    case 'payment':
      return { answer: okAnswer(paymentJson(record)), delivery };
    case 'unknown_status':
      return { answer: okAnswer(paymentJson(record, 'READY')), delivery };
    case 'decline':
      return { answer: errorAnswer(403, declineCode, declineMessage), delivery };
    case 'ambiguous':
      return { answer: errorAnswer(500, ambiguousCode, ambiguousMessage), delivery };
    case 'provider':
      return { answer: errorAnswer(502, 'PROVIDER_ERROR', 'The card company did not answer properly.'), delivery };
    case 'unknown_code':
      return { answer: errorAnswer(400, 'SOMETHING_NEW', 'A code this client has never seen.'), delivery };
  }
}

function now(answer: Answer): ConfirmResult {
  return { answer, delivery: 'now' };
}
