/**
 * Every route the API serves, described once: parameters, body, examples and answers, each
 * answer with the zod schema its body validates against. `openapi.ts` turns this into the
 * OpenAPI 3.1 document; `openapi.test.ts` holds it to the router (no route undocumented, none
 * documented that does not exist) and sends every example to a live app.
 */
import { z } from 'zod';
import type { Config } from '@sluice/config';
import { ADMIN_QUEUES_PATH } from './admin.ts';
import { PAYMENT_STATUSES } from '@sluice/domain';
import { dailySummarySchema, dashboardDataSchema, errorBodySchema, healthSchema, paymentPageSchema, paymentResourceSchema, providersSchema, readinessSchema, type ApiErrorCode } from './api-schemas.ts';
import { MAX_WAIT_SECONDS } from './long-poll.ts';
import { ORDER_ID, paymentRequestSchema } from './payment-request.ts';

/** One documented answer. A JSON body has `schema`; any other body has only `contentType`. */
export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  /** Defaults to application/json. */
  contentType?: string;
  /** Response headers worth knowing: name → description. */
  headers?: Record<string, string>;
}

/** A path, query or header parameter. `examples` are by example name (see {@link OperationSpec}). */
export interface ParamSpec {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  description: string;
  schema: z.ZodType;
  /** Typed as the schema is (a number for an integer query parameter). */
  examples: Record<string, string | number>;
}

/**
 * One route. Its example requests are named: the request called `x` is made of every
 * parameter's `examples.x` and the body's `examples.x`; an operation with neither has one
 * implicit example (the bare request).
 */
export interface OperationSpec {
  method: 'get' | 'post';
  /** OpenAPI form: `/v1/payments/{id}`. */
  path: string;
  operationId: string;
  summary: string;
  description: string;
  tag: 'Payments' | 'Operations' | 'Admin';
  auth: 'merchant' | 'admin' | 'none';
  parameters: ParamSpec[];
  requestBody?: { description: string; schema: z.ZodType; examples: Record<string, { summary: string; value: unknown }> };
  responses: Record<number, ResponseSpec>;
}

const json = (description: string, schema: z.ZodType, headers?: Record<string, string>): ResponseSpec => ({ description, schema, ...(headers ? { headers } : {}) });
const error = (description: string, ...codes: [ApiErrorCode, ...ApiErrorCode[]]): ResponseSpec => ({ description, schema: errorBodySchema(codes) });
const html = (description: string): ResponseSpec => ({ description, contentType: 'text/html' });

const unauthorized = (auth: 'merchant' | 'admin'): ResponseSpec =>
  error(auth === 'merchant' ? 'No or unknown API key (`WWW-Authenticate: Bearer`)' : 'No or wrong operator credentials', 'UNAUTHORIZED');
const internal = error('An unexpected failure; nothing inside is said', 'INTERNAL');

const EXAMPLE_ID = 'pay_0mwtg0rp12c8a1204a9db35e3';

function paymentOperations(config: Config): OperationSpec[] {
  const currency = config.PG_CURRENCY;
  const payment = (what: string) => json(what, paymentResourceSchema);
  return [
    {
      method: 'post',
      path: '/v1/payments',
      operationId: 'createPayment',
      summary: 'Accept a payment',
      description:
        'Validates the payment, stores it with its idempotency key in one atomic Redis step, and answers 202 once Redis acknowledged it. ' +
        'Sluice then confirms it with the PG as fast as the PG allows. A repeat with the same Idempotency-Key and body replays the first ' +
        'answer byte for byte with `Idempotent-Replayed: true` (24 h, per merchant). Never 429: past the backlog ceiling the answer is 503.',
      tag: 'Payments',
      auth: 'merchant',
      parameters: [
        {
          name: 'Idempotency-Key',
          in: 'header',
          required: true,
          description: '1–255 printable ASCII characters; one per payment the merchant means to make',
          schema: z.string().regex(/^[\x20-\x7E]{1,255}$/),
          examples: { minimal: 'order-1001-attempt-1', withMetadata: 'order-1002-attempt-1' },
        },
      ],
      requestBody: {
        description: `Unknown fields are refused. Bodies over ${config.BODY_LIMIT_BYTES} bytes are 413.`,
        schema: paymentRequestSchema(currency),
        examples: {
          minimal: { summary: 'The three required fields', value: { paymentKey: 'pk_example_1001', orderId: 'order-1001', amount: 15000 } },
          withMetadata: {
            summary: 'With the currency spelled out and metadata',
            value: { paymentKey: 'pk_example_1002', orderId: 'order-1002', amount: 9900, currency, metadata: { cart: 'c-17', channel: 'web' } },
          },
        },
      },
      responses: {
        202: json('Accepted (or replayed): the QUEUED payment', paymentResourceSchema, {
          Location: 'The payment: `/v1/payments/{id}`',
          'Idempotent-Replayed': '`true` when this is the stored answer to an earlier request with the same key and body',
        }),
        400: error('Bad body or headers (zod issues in `details`, never the values), malformed JSON, or card data in metadata', 'INVALID_REQUEST', 'CARD_DATA_NOT_ALLOWED'),
        401: unauthorized('merchant'),
        409: error('Another payment (any merchant: the PG account is shared) holds this paymentKey or orderId', 'DUPLICATE_PAYMENT_KEY', 'DUPLICATE_ORDER_ID'),
        413: error(`Body over ${config.BODY_LIMIT_BYTES} bytes`, 'PAYLOAD_TOO_LARGE'),
        415: error('Not application/json (or a charset other than UTF-8)', 'UNSUPPORTED_MEDIA_TYPE'),
        422: error('The same Idempotency-Key with a different body', 'IDEMPOTENCY_KEY_REUSED'),
        500: internal,
        503: {
          ...error(
            "The payments not final hold BACKLOG_MAX_SECONDS of work at the PG's rate (BACKLOG_FULL), or this merchant's payments waiting hold that much at its share of the rate (MERCHANT_BACKLOG_FULL, this merchant only); retry after Retry-After",
            'BACKLOG_FULL', 'MERCHANT_BACKLOG_FULL',
          ),
          headers: { 'Retry-After': 'Seconds' },
        },
      },
    },
    {
      method: 'get',
      path: '/v1/payments/{id}',
      operationId: 'getPayment',
      summary: 'Read a payment, optionally waiting for its final state',
      description:
        "A merchant sees only its own payments: another merchant's id answers 404 exactly like an unknown one. " +
        `With \`wait=N\` (whole seconds, 0–${MAX_WAIT_SECONDS}) a payment that is not final is answered once it becomes final, or after N seconds ` +
        'with its state then (a long poll). A final payment is answered at once.',
      tag: 'Payments',
      auth: 'merchant',
      parameters: [
        { name: 'id', in: 'path', required: true, description: "Sluice's payment id (from the 202's `id` or `Location`)", schema: z.string(), examples: { byId: EXAMPLE_ID, longPoll: EXAMPLE_ID } },
        {
          name: 'wait',
          in: 'query',
          required: false,
          description: `Seconds to wait for a final state (0–${MAX_WAIT_SECONDS}; 0 or absent: answer now)`,
          schema: z.int().min(0).max(MAX_WAIT_SECONDS),
          examples: { longPoll: 10 },
        },
      ],
      responses: {
        200: payment('The payment'),
        400: error('`wait` is not a whole number from 0 to 30', 'INVALID_REQUEST'),
        401: unauthorized('merchant'),
        404: error('No such payment for this merchant', 'NOT_FOUND'),
        500: internal,
        503: { ...error('Too many requests are waiting in this process; retry, or poll without `wait`', 'TOO_MANY_WAITERS'), headers: { 'Retry-After': 'Seconds' } },
      },
    },
    {
      method: 'get',
      path: '/v1/payments',
      operationId: 'listPayments',
      summary: 'List payments, or read one by orderId',
      description:
        "Without `orderId`: this merchant's payments from the books (PostgreSQL), newest first, a page at a time; pass the page's " +
        '`nextStartingAfter` as `startingAfter` for the next. The books follow Redis within the drainer\'s lag (seconds). ' +
        "With `orderId`: the payment with this orderId if it is this merchant's (Redis first, then the books), otherwise 404.",
      tag: 'Payments',
      auth: 'merchant',
      parameters: [
        { name: 'orderId', in: 'query', required: false, description: 'The orderId the payment was made with: answers that one payment', schema: ORDER_ID, examples: { byOrderId: 'order-1001' } },
        { name: 'status', in: 'query', required: false, description: 'Only payments in this status', schema: z.enum(PAYMENT_STATUSES), examples: { approved: 'APPROVED' } },
        { name: 'createdFrom', in: 'query', required: false, description: 'Created at or after (ISO 8601)', schema: z.iso.datetime({ offset: true }), examples: { approved: '2026-01-01T00:00:00Z' } },
        { name: 'createdTo', in: 'query', required: false, description: 'Created before (ISO 8601)', schema: z.iso.datetime({ offset: true }), examples: {} },
        { name: 'limit', in: 'query', required: false, description: 'Payments per page, 1–100 (default 20)', schema: z.int().min(1).max(100), examples: { approved: 10 } },
        { name: 'startingAfter', in: 'query', required: false, description: "The previous page's `nextStartingAfter`", schema: z.string(), examples: {} },
      ],
      responses: {
        200: json('The payment (with orderId), or a page of payments', z.union([paymentResourceSchema, paymentPageSchema])),
        400: error('A malformed or unknown query parameter', 'INVALID_REQUEST'),
        401: unauthorized('merchant'),
        404: error('No such payment for this merchant', 'NOT_FOUND'),
        500: internal,
        503: { ...error('The books are not configured or did not answer', 'BOOKS_UNAVAILABLE'), headers: { 'Retry-After': 'Seconds' } },
      },
    },
    {
      method: 'get',
      path: '/v1/summary/daily',
      operationId: 'dailySummary',
      summary: 'Daily summary',
      description:
        "Per UTC day from `from` to `to` (both included, at most 366 days): this merchant's payments created that day, counted and summed " +
        '(minor units) by final status, and those not final yet. JSON, or CSV with `format=csv` or `Accept: text/csv`.',
      tag: 'Payments',
      auth: 'merchant',
      parameters: [
        { name: 'from', in: 'query', required: true, description: 'First day, YYYY-MM-DD (UTC)', schema: z.string(), examples: { month: '2026-11-01' } },
        { name: 'to', in: 'query', required: true, description: 'Last day, YYYY-MM-DD (UTC), included', schema: z.string(), examples: { month: '2026-11-30' } },
        { name: 'format', in: 'query', required: false, description: '`csv` for CSV', schema: z.enum(['json', 'csv']), examples: {} },
      ],
      responses: {
        200: json('The days with payments', dailySummarySchema),
        400: error('Bad or missing dates, or more than 366 days', 'INVALID_REQUEST'),
        401: unauthorized('merchant'),
        500: internal,
        503: { ...error('The books are not configured or did not answer', 'BOOKS_UNAVAILABLE'), headers: { 'Retry-After': 'Seconds' } },
      },
    },
    {
      method: 'get',
      path: '/v1/providers',
      operationId: 'listProviders',
      summary: 'Routing advice for a new checkout',
      description:
        'Each PG (provider) with its state for new checkouts (`available`; `degraded` while its breaker probes or its calls fail often; `down` while its ' +
        "breaker is open), its backlog, and when a new payment of this merchant accepted now should reach it; and a `recommended` provider, drawn by weight among the " +
        'available ones (else the degraded ones; null when all are down). Ask it before opening a PG\'s payment window: a paymentKey can only be confirmed at the PG that issued it.',
      tag: 'Payments',
      auth: 'merchant',
      parameters: [],
      responses: {
        200: json('The providers and the recommendation', providersSchema),
        401: unauthorized('merchant'),
        500: internal,
      },
    },
  ];
}

const bare = (method: 'get', path: string, operationId: string, summary: string, description: string, tag: OperationSpec['tag'], auth: OperationSpec['auth'], responses: OperationSpec['responses']): OperationSpec => ({
  method, path, operationId, summary, description, tag, auth, parameters: [], responses,
});

function operationsRoutes(): OperationSpec[] {
  return [
    bare('get', '/healthz', 'liveness', 'Liveness', 'The process serves HTTP. Restart it if not.', 'Operations', 'none', { 200: json('Alive', healthSchema) }),
    bare('get', '/readyz', 'readiness', 'Readiness', 'Every readiness check (Redis first) passes within a second: route traffic here.', 'Operations', 'none', {
      200: json('Ready', readinessSchema),
      503: json('Not ready: the failing checks say `down`', readinessSchema),
    }),
    bare('get', '/openapi.json', 'openapi', 'This document', 'The OpenAPI 3.1 description of the API, generated from the schemas the API validates with.', 'Operations', 'none', {
      200: json('The document', z.looseObject({ openapi: z.literal('3.1.0'), paths: z.record(z.string(), z.unknown()) })),
    }),
    bare('get', '/docs', 'docs', 'API reference', 'This document as a self-contained HTML page.', 'Operations', 'none', { 200: html('The reference page') }),
  ];
}

function adminOperations(): OperationSpec[] {
  const unavailable = error('Redis did not answer in time', 'REDIS_UNAVAILABLE');
  const throttled: ResponseSpec = {
    ...error('Too many failed logins from this address or for this user name (ADMIN_LOGIN_MAX_FAILURES per ADMIN_LOGIN_WINDOW_MS)', 'TOO_MANY_ATTEMPTS'),
    headers: { 'Retry-After': 'Seconds until the window ends' },
  };
  return [
    bare('get', ADMIN_QUEUES_PATH, 'adminQueues', 'Queues board (bull-board)', 'The confirm, resolve and maintenance queues. Read-only unless BULL_BOARD_READ_ONLY=false: then every method but GET and HEAD under this path is a 405. Its own API and assets live under this path.', 'Admin', 'admin', {
      200: html('The board'),
      401: unauthorized('admin'),
      429: throttled,
    }),
    bare('get', '/dashboard', 'dashboard', 'Operations dashboard', 'PG calls per second against the limit, intake, final states, backlog, breaker, latest failures.', 'Admin', 'admin', {
      200: html('The dashboard page'),
      401: unauthorized('admin'),
      429: throttled,
    }),
    bare('get', '/dashboard/data', 'dashboardData', "The dashboard's data", 'Five minutes of per-second series and the current figures, in one Redis round trip.', 'Admin', 'admin', {
      200: json('The figures', dashboardDataSchema),
      401: unauthorized('admin'),
      429: throttled,
      503: unavailable,
    }),
    bare('get', '/metrics', 'metrics', 'Prometheus metrics', "This process's metrics and the cluster's figures read from Redis, in the Prometheus text format.", 'Admin', 'admin', {
      200: { description: 'The metrics', contentType: 'text/plain' },
      401: unauthorized('admin'),
      429: throttled,
      503: unavailable,
    }),
  ];
}

/** Every route of an app built with `config`. The admin routes exist only with operator credentials. */
export function apiOperations(config: Config): OperationSpec[] {
  const admin = Boolean(config.ADMIN_USER && config.ADMIN_PASSWORD);
  return [...paymentOperations(config), ...operationsRoutes(), ...(admin ? adminOperations() : [])];
}
