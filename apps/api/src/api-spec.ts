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
import { endpointListSchema, endpointResourceSchema, eventPageSchema, dailySummarySchema, dashboardDataSchema, errorBodySchema, healthSchema, paymentPageSchema, paymentResourceSchema, providersSchema, readinessSchema, type ApiErrorCode } from './api-schemas.ts';
import { MAX_WAIT_SECONDS } from './long-poll.ts';
import { endpointRequestSchema } from './webhook-routes.ts';
import { cancelRequestSchema, ORDER_ID, paymentRequestSchema } from './payment-request.ts';

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
  method: 'get' | 'post' | 'delete';
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
            "The payments not final hold BACKLOG_MAX_SECONDS of work at the PG's rate (BACKLOG_FULL), or this merchant's payments waiting hold that much at its share of the rate (MERCHANT_BACKLOG_FULL, this merchant only), " +
              'or (REDIS_WAIT_REPLICAS) no Redis replica confirmed the payment in time (REPLICA_UNCONFIRMED: recorded, not yet safe from a failover), ' +
              'or Redis refuses writes during a failover or drops the connection under the request (REDIS_UNAVAILABLE); retry after Retry-After with the same Idempotency-Key',
            'BACKLOG_FULL', 'MERCHANT_BACKLOG_FULL', 'REPLICA_UNCONFIRMED', 'REDIS_UNAVAILABLE',
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
      method: 'post',
      path: '/v1/payments/{id}/cancel',
      operationId: 'cancelPayment',
      summary: 'Cancel or refund a payment, in whole or in part',
      description:
        'By the payment\'s state: QUEUED (never sent to the PG) is CANCELED at once, with no PG call, and its orderId and paymentKey are free again; ' +
        'PROCESSING takes only a cancel of the whole amount, which voids the confirm under way at the PG (409 NOT_CANCELABLE_YET for a part); ' +
        'APPROVED: the amount (none: the whole balance left) is reserved against the balance at once, so racing cancels never pass it, and the ' +
        'cancel goes to the PG through the permit gate, one per payment at a time. The payment stays APPROVED while its `balanceAmount` is above 0 ' +
        'and shows CANCELED at 0. Each cancel is listed in the payment\'s `cancels` (PENDING, then SUCCEEDED or FAILED). A cancel whose outcome at ' +
        'the PG is not known is settled by querying the PG, never by sending it again. A repeat with the same Idempotency-Key and body replays the ' +
        'first answer with `Idempotent-Replayed: true`.',
      tag: 'Payments',
      auth: 'merchant',
      parameters: [
        { name: 'id', in: 'path', required: true, description: "Sluice's payment id", schema: z.string(), examples: { whole: EXAMPLE_ID, part: EXAMPLE_ID } },
        {
          name: 'Idempotency-Key',
          in: 'header',
          required: true,
          description: '1–255 printable ASCII characters; one per cancel the merchant means to make (a new key is a new cancel)',
          schema: z.string().regex(/^[\x20-\x7E]{1,255}$/),
          examples: { whole: 'refund-1001-1', part: 'refund-1001-2' },
        },
      ],
      requestBody: {
        description: `Unknown fields are refused. Bodies over ${config.BODY_LIMIT_BYTES} bytes are 413.`,
        schema: cancelRequestSchema,
        examples: {
          whole: { summary: 'Cancel the whole balance left', value: { reason: 'Customer changed their mind' } },
          part: { summary: 'Refund part of it', value: { reason: 'One item returned', amount: 5000 } },
        },
      },
      responses: {
        202: json('Accepted (or replayed): the payment with its cancels', paymentResourceSchema, {
          Location: 'The payment: `/v1/payments/{id}`',
          'Idempotent-Replayed': '`true` when this is the stored answer to an earlier request with the same key and body',
        }),
        400: error('Bad body or headers, or card data in the reason', 'INVALID_REQUEST', 'CARD_DATA_NOT_ALLOWED'),
        401: unauthorized('merchant'),
        404: error('No such payment for this merchant', 'NOT_FOUND'),
        409: error('DECLINED, FAILED or CANCELED (NOT_CANCELABLE), or a part of a payment still being confirmed (NOT_CANCELABLE_YET)', 'NOT_CANCELABLE', 'NOT_CANCELABLE_YET'),
        413: error(`Body over ${config.BODY_LIMIT_BYTES} bytes`, 'PAYLOAD_TOO_LARGE'),
        415: error('Not application/json', 'UNSUPPORTED_MEDIA_TYPE'),
        422: error('The same Idempotency-Key with a different body, or an amount above the balance left counting cancels still pending', 'IDEMPOTENCY_KEY_REUSED', 'CANCEL_AMOUNT_EXCEEDS_BALANCE'),
        500: internal,
        503: {
          ...error(
            'The books are not configured or did not answer (a payment past its hot window is read from them), or (REDIS_WAIT_REPLICAS) no Redis replica confirmed the request in time; retry with the same Idempotency-Key',
            'BOOKS_UNAVAILABLE', 'REPLICA_UNCONFIRMED',
          ),
          headers: { 'Retry-After': 'Seconds' },
        },
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

/** The webhook routes (webhook-routes.ts). */
function webhookOperations(): OperationSpec[] {
  const unavailable = { ...error('Webhooks are not configured (WEBHOOK_ENCRYPTION_KEY)', 'WEBHOOKS_UNAVAILABLE') };
  const booksDown = { ...error('The books are not configured or did not answer', 'BOOKS_UNAVAILABLE'), headers: { 'Retry-After': 'Seconds' } };
  return [
    {
      method: 'post',
      path: '/v1/webhook-endpoints',
      operationId: 'createWebhookEndpoint',
      summary: 'Register a webhook endpoint',
      description:
        'Sluice POSTs each event of the chosen types to the URL, signed as Standard Webhooks say (`webhook-id`, `webhook-timestamp`, `webhook-signature`: ' +
        '`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the secret), at least once, retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h; ' +
        'an answer `410 Gone` disables the endpoint. The `secret` is in this answer only; it is sealed at rest. The URL must be https (plain http outside ' +
        'production) and may not be a loopback, private or link-local address (checked again on the address connected to, after DNS); redirects are not followed. ' +
        'At most 20 endpoints per merchant.',
      tag: 'Payments',
      auth: 'merchant',
      parameters: [],
      requestBody: {
        description: 'Unknown fields are refused.',
        schema: endpointRequestSchema,
        examples: { register: { summary: 'Final states and refunds', value: { url: 'https://merchant.example/webhooks/sluice', events: ['payment.approved', 'payment.canceled', 'refund.failed'] } } },
      },
      responses: {
        201: json('The endpoint, with its secret (shown this once)', endpointResourceSchema),
        400: error('A bad body, or a URL the policy refuses (`details` says why)', 'INVALID_REQUEST'),
        401: unauthorized('merchant'),
        409: error('The merchant has 20 endpoints already', 'ENDPOINT_LIMIT_REACHED'),
        413: error('Body too large', 'PAYLOAD_TOO_LARGE'),
        415: error('Not application/json', 'UNSUPPORTED_MEDIA_TYPE'),
        500: internal,
        503: unavailable,
      },
    },
    bare('get', '/v1/webhook-endpoints', 'listWebhookEndpoints', "The merchant's webhook endpoints", 'Oldest first, without their secrets; a disabled one has `disabledAt`.', 'Payments', 'merchant', {
      200: json('The endpoints', endpointListSchema),
      401: unauthorized('merchant'),
      500: internal,
    }),
    {
      method: 'delete',
      path: '/v1/webhook-endpoints/{id}',
      operationId: 'deleteWebhookEndpoint',
      summary: 'Delete a webhook endpoint',
      description: 'Nothing more is delivered to it (deliveries under way may still arrive).',
      tag: 'Payments',
      auth: 'merchant',
      parameters: [{ name: 'id', in: 'path', required: true, description: 'The endpoint id', schema: z.string(), examples: { unknown: 'we_000000000000000000000000' } }],
      responses: { 204: { description: 'Deleted', contentType: '' }, 401: unauthorized('merchant'), 404: error('No such endpoint of this merchant', 'NOT_FOUND'), 500: internal },
    },
    {
      method: 'get',
      path: '/v1/events',
      operationId: 'listEvents',
      summary: "The merchant's events, in order",
      description:
        'Every event Sluice delivers or would deliver (whether or not an endpoint takes it), from the books, oldest first: for a merchant that missed some. ' +
        '`after` is the last id of the previous page (`nextAfter`). Each carries the payment\'s sequence number (`data.seq`): order one payment\'s events by it.',
      tag: 'Payments',
      auth: 'merchant',
      parameters: [
        { name: 'after', in: 'query', required: false, description: 'The last event id already seen', schema: z.string(), examples: {} },
        { name: 'limit', in: 'query', required: false, description: '1–100 (default 50)', schema: z.int().min(1).max(100), examples: { first: 10 } },
      ],
      responses: {
        200: json('A page of events', eventPageSchema),
        400: error('A bad query, or an unknown `after`', 'INVALID_REQUEST'),
        401: unauthorized('merchant'),
        500: internal,
        503: booksDown,
      },
    },
    {
      method: 'post',
      path: '/v1/events/{id}/redeliver',
      operationId: 'redeliverEvent',
      summary: 'Deliver an event again',
      description: 'To every endpoint of the merchant that takes its type and is not disabled, now, with the same `webhook-id` (receivers deduplicate on it).',
      tag: 'Payments',
      auth: 'merchant',
      parameters: [{ name: 'id', in: 'path', required: true, description: 'The event id', schema: z.string(), examples: { unknown: 'evt_pay_0mwtg0rp12c8a1204a9db35e3_4' } }],
      responses: {
        202: json('The endpoints it goes to', z.strictObject({ id: z.string(), endpoints: z.array(z.string()) })),
        401: unauthorized('merchant'),
        404: error('No such event of this merchant', 'NOT_FOUND'),
        500: internal,
        503: booksDown,
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
  return [...paymentOperations(config), ...webhookOperations(), ...operationsRoutes(), ...(admin ? adminOperations() : [])];
}
