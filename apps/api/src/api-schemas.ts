/**
 * What the API answers with, as zod schemas: the payment resource, the error body, the probes.
 * The OpenAPI document is generated from these (and from the request schema the intake
 * validates with), and the tests validate live answers against the same objects, so the
 * document cannot describe a shape the API does not send.
 */
import { z } from 'zod';
import { PAYMENT_STATUSES, REFUND_STATUSES, WEBHOOK_EVENT_TYPES, type ErrorCode } from '@sluice/domain';
import type { PaymentResource } from './render.ts';

const isoTime = z.iso.datetime({ offset: false });

/** A merchant's cancel, as shown on its payment. */
export const cancelResourceSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^cnl_[A-Za-z0-9_-]+$/)
      .describe("Sluice's cancel id (the PG's Idempotency-Key derives from it); `cnl_pg_<transactionKey>` for a cancel reconciliation found at the PG"),
    amount: z.int().positive().describe('Minor units'),
    reason: z.string().describe('As sent; the PG gets it as cancelReason'),
    status: z
      .enum(REFUND_STATUSES)
      .describe('PENDING (not done at the PG yet, its amount reserved), SUCCEEDED (done: the money is back on the card), FAILED (not done; see failure)'),
    failure: z.strictObject({ code: z.string(), message: z.string() }).nullable().describe("Why it FAILED: the PG's code (NOT_CANCELABLE_AMOUNT, …) or Sluice's (NOT_CANCELED_BY_PG, NOT_CANCELABLE)"),
    createdAt: isoTime,
    completedAt: isoTime.nullable().describe('When it SUCCEEDED or FAILED'),
  })
  .describe('A cancel of (part of) a payment');

/** The payment resource (render.ts's `PaymentResource`). Strict: a new field must be documented. */
export const paymentResourceSchema = z
  .strictObject({
    id: z.string().regex(/^pay_[0-9a-z]{9}[0-9a-f]{16}$/).describe("Sluice's payment id"),
    paymentKey: z.string().describe("The PG's token from the customer's authorisation, as sent"),
    orderId: z.string().describe('The merchant\'s order id, unique across the PG account'),
    amount: z.int().positive().describe('Minor units'),
    currency: z.string().describe("The PG account's currency"),
    provider: z.string().describe('The PG (provider id) the payment goes to'),
    metadata: z.record(z.string(), z.string()).nullable().describe('As sent, or null'),
    status: z
      .enum(PAYMENT_STATUSES)
      .describe('QUEUED (not sent to the PG yet), PROCESSING (sent, not final), or a final state: APPROVED, DECLINED, FAILED, CANCELED'),
    attempts: z.int().nonnegative().describe('Confirms Sluice has tried to send to the PG so far (a try held back on our side before it was written counts too)'),
    createdAt: isoTime,
    updatedAt: isoTime,
    finalizedAt: isoTime.nullable().describe('When it became final'),
    transactionKey: z.string().nullable().describe("The PG's transaction key once APPROVED"),
    approvedAt: z.string().nullable().describe('When the PG approved it, as the PG wrote it'),
    failure: z
      .strictObject({ code: z.string(), message: z.string() })
      .nullable()
      .describe("Why it was DECLINED, FAILED or CANCELED: the PG's code, or Sluice's (EXPIRED_IN_QUEUE, NOT_PROCESSED_BY_PG, …)"),
    balanceAmount: z.int().nonnegative().describe('What is still charged to the card: the amount less every cancel done, while APPROVED; 0 in every other status'),
    cancels: z.array(cancelResourceSchema).describe("The merchant's cancels of this payment, oldest first"),
    eta: isoTime
      .nullable()
      .describe(
        "While QUEUED: when it should reach the PG, estimated from its place in its merchant's fair queue at the merchant's share of the PG's rate (PG_RATE_LIMIT per PG_RATE_WINDOW_MS), behind the payments already admitted. Null in every other status.",
      ),
  })
  .describe('A payment');

/** A page of `GET /v1/payments` (without orderId). */
export const paymentPageSchema = z
  .strictObject({
    data: z.array(paymentResourceSchema),
    hasMore: z.boolean().describe('Whether another page follows'),
    nextStartingAfter: z.string().nullable().describe('`startingAfter` for the next page; null on the last'),
  })
  .describe('A page of payments, newest first');

const tally = z.strictObject({ count: z.int().min(0), amount: z.int().min(0).describe('Minor units') });
/** `GET /v1/summary/daily` as JSON. */
export const dailySummarySchema = z
  .strictObject({
    currency: z.string(),
    days: z.array(
      z.strictObject({
        day: z.string().describe('YYYY-MM-DD (UTC)'),
        approved: tally,
        declined: tally,
        failed: tally,
        canceled: tally,
        open: tally.describe('Not final yet'),
        refunded: tally.describe('Cancels done at the PG that day (by the day they completed), whichever day their payments were made'),
      }),
    ),
  })
  .describe("A merchant's days: payments created that day, by final status, and the money refunded that day");

/** Every code a merchant or operator can be answered with. */
export const API_ERROR_CODES = [
  'INVALID_REQUEST',
  'UNAUTHORIZED',
  'NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'IDEMPOTENCY_KEY_REUSED',
  'DUPLICATE_PAYMENT_KEY',
  'DUPLICATE_ORDER_ID',
  'CARD_DATA_NOT_ALLOWED',
  'BACKLOG_FULL',
  'MERCHANT_BACKLOG_FULL',
  'REPLICA_UNCONFIRMED',
  'NOT_CANCELABLE',
  'NOT_CANCELABLE_YET',
  'CANCEL_AMOUNT_EXCEEDS_BALANCE',
  'WEBHOOKS_UNAVAILABLE',
  'ENDPOINT_LIMIT_REACHED',
  'TOO_MANY_WAITERS',
  'REDIS_UNAVAILABLE',
  'BOOKS_UNAVAILABLE',
  'METHOD_NOT_ALLOWED',
  'REQUEST_TIMEOUT',
  'HEADERS_TOO_LARGE',
  'TOO_MANY_ATTEMPTS',
  'INTERNAL',
] as const satisfies readonly ErrorCode[];
/** A code the API answers errors with. */
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

/**
 * The error body, `{ code, message, details? }`, with `code` limited to `codes` (every API code
 * by default): each documented response lists the codes it can carry.
 */
export function errorBodySchema(codes: readonly [ApiErrorCode, ...ApiErrorCode[]] = API_ERROR_CODES) {
  return z
    .strictObject({
      code: z.enum(codes),
      message: z.string().describe('For people; may change'),
      details: z.unknown().optional().describe('For INVALID_REQUEST: the issues as [{ path, code, message }]; never the offending values'),
    })
    .describe('An error');
}

/** `GET /v1/providers`. */
export const providersSchema = z.strictObject({
  providers: z.array(
    z.strictObject({
      id: z.string(),
      state: z.enum(['available', 'degraded', 'down']),
      breaker: z.enum(['closed', 'half_open', 'open']),
      errorRate: z.number().nullable().describe("Failed calls ÷ calls over the breaker's window; null with too few calls"),
      weight: z.number().int().describe('Its share of new checkouts among the available providers'),
      limitPerSecond: z.number(),
      backlog: z.strictObject({ waiting: z.number().int(), admitted: z.number().int() }),
      eta: isoTime.describe("When a new payment of this merchant accepted now should reach this PG"),
    }),
  ),
  recommended: z.string().nullable(),
});

/** A webhook endpoint (webhook-routes.ts's `EndpointResource`). */
export const endpointResourceSchema = z
  .strictObject({
    id: z.string().regex(/^we_[0-9a-f]{24}$/),
    url: z.string(),
    events: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
    createdAt: isoTime,
    disabledAt: isoTime.nullable().describe('When it was disabled (its receiver answered 410 Gone), or null'),
    secret: z.string().regex(/^whsec_/).optional().describe('The signing secret (`whsec_` + base64): in the answer that made the endpoint only'),
  })
  .describe('A webhook endpoint');

/** `GET /v1/webhook-endpoints`. */
export const endpointListSchema = z.strictObject({ data: z.array(endpointResourceSchema) });

/** An event, as delivered and as listed. */
export const eventSchema = z
  .strictObject({
    id: z.string().describe('`evt_<payment id>_<seq>`: the `webhook-id` of its deliveries'),
    type: z.enum(WEBHOOK_EVENT_TYPES),
    timestamp: isoTime,
    data: z.strictObject({
      paymentId: z.string(),
      orderId: z.string(),
      status: z.enum(PAYMENT_STATUSES),
      amount: z.int().positive(),
      balanceAmount: z.int().nonnegative(),
      provider: z.string().nullable(),
      seq: z.int().positive().describe("The payment's sequence number: order one payment's events by it"),
      failure: z.strictObject({ code: z.string(), message: z.string() }).nullable(),
      cancel: z
        .strictObject({ id: z.string(), amount: z.int().positive(), status: z.enum(REFUND_STATUSES), failure: z.strictObject({ code: z.string(), message: z.string() }).nullable() })
        .nullable()
        .describe('The cancel this event is about (payment.partially_canceled, payment.canceled by a refund, refund.failed)'),
    }),
  })
  .describe('An event');

/** `GET /v1/events`. */
export const eventPageSchema = z.strictObject({
  data: z.array(eventSchema),
  hasMore: z.boolean(),
  nextAfter: z.string().nullable().describe('`after` for the next page'),
});

/** `GET /healthz`. */
export const healthSchema = z.strictObject({ status: z.literal('ok') });

/** `GET /readyz`: one entry per readiness check, by name. */
export const readinessSchema = z.strictObject({
  status: z.enum(['ok', 'unavailable']),
  checks: z.record(z.string(), z.string()).describe("'ok' or 'down' per check; advisory checks report their own value"),
});

/** `GET /dashboard/data`: the operators' figures (their shape belongs to the dashboard). */
export const dashboardDataSchema = z.looseObject({}).describe('Per-second series and current figures for the operators\' dashboard');

// The resource type and the schema must describe the same object, both ways.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const resourceMatches: Same<z.infer<typeof paymentResourceSchema>, PaymentResource> = true;
void resourceMatches;
