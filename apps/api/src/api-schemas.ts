/**
 * What the API answers with, as zod schemas: the payment resource, the error body, the probes.
 * The OpenAPI document is generated from these (and from the request schema the intake
 * validates with), and the tests validate live answers against the same objects, so the
 * document cannot describe a shape the API does not send.
 */
import { z } from 'zod';
import { PAYMENT_STATUSES, type ErrorCode } from '@sluice/domain';
import type { PaymentResource } from './render.ts';

const isoTime = z.iso.datetime({ offset: false });

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
      }),
    ),
  })
  .describe("A merchant's days: payments created that day, by final status");

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
