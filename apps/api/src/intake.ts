/**
 * `POST /v1/payments`, the hot path: what the intake does with a request, and the front that
 * serves it from `node:http` ahead of Express.
 *
 * The handler validates in memory, renders its 202 body up front (with a hole for `eta`, which
 * the script fills from the merchant's place in the fair share), and makes exactly one Redis
 * round trip (the intake script; two with several payment shards). The 202 is sent once Redis has
 * acknowledged the script, which put the payment in its merchant's fair queue: the workers admit
 * it from there by turns between merchants, and add its confirm job then.
 *
 * The front: Express's router, its request and response objects and its middleware chain cost
 * about a quarter of the intake's CPU (0.37 against 0.28 ms per intake, docs/perf.md).
 * `intakeFront` takes `POST /v1/payments` before Express sees it and runs the same steps, in the
 * same order, with the same functions Express's chain runs: security headers, request id,
 * repeated headers, the intake counter, Cache-Control, merchant auth, Content-Type, body, handler,
 * error answer. Every other request, and the intake at a path Express would also match
 * (`/v1/payments/`, other case), goes to Express, whose `POST /v1/payments` route runs the same
 * handler.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { merchantWeight, providersOf, type Config } from '@sluice/config';
import { assertNever, SluiceError } from '@sluice/domain';
import { paymentIdTime, type NewPayment, type PaymentStore, type PgRate, type ReplicaWaiter } from '@sluice/store';
import { confirmReplicated, send202, type FromBooks } from './answers.ts';
import type { MerchantAuth } from './auth.ts';
import { sendError } from './errors.ts';
import { assertJsonType, readJsonBody } from './json-body.ts';
import { fingerprintOf, idempotencyKeyOf, parsePaymentRequest, paymentRequestSchema, sha256Hex } from './payment-request.ts';
import { bodyTemplate, intakeBody } from './render.ts';
import { refuseRepeated, takeRequestId } from './request-context.ts';

/** What a merchant is told to wait when the backlog is full: long enough for the PG to drain some. */
const BACKLOG_RETRY_AFTER_SECONDS = 30;

/**
 * The backlog ceiling in PG send slots: BACKLOG_MAX_SECONDS of work at the PG's rate limit
 * (PG_RATE_LIMIT calls per PG_RATE_WINDOW_MS), never below one. It bounds the payments not
 * final, and each merchant's payments waiting at its share of the rate.
 */
export function backlogCeiling(c: Pick<Config, 'BACKLOG_MAX_SECONDS' | 'PG_RATE_LIMIT' | 'PG_RATE_WINDOW_MS'>): number {
  return Math.max(1, Math.floor((c.BACKLOG_MAX_SECONDS * 1000 * c.PG_RATE_LIMIT) / c.PG_RATE_WINDOW_MS));
}

/** Each provider's rate (for a payment's eta) and backlog ceiling (for its merchants' queues). */
export function providerLimits(config: Config): {
  providers: Map<string, { rate: PgRate; ceiling: number }>;
  firstProvider: string;
  /** A payment's provider's rate; the first provider's for a payment of none. */
  rateOf: (provider: string | null) => PgRate;
} {
  const providers = new Map(
    providersOf(config).map((p) => [p.id, { rate: { windowMs: p.config.PG_RATE_WINDOW_MS, limit: p.config.PG_RATE_LIMIT } as PgRate, ceiling: backlogCeiling(p.config) }]),
  );
  const firstProvider = [...providers.keys()][0]!;
  const rateOf = (provider: string | null): PgRate => (providers.get(provider ?? firstProvider) ?? providers.get(firstProvider)!).rate;
  return { providers, firstProvider, rateOf };
}

/** What the intake needs: the store, the books (for a replay of an archived payment), replicas to confirm on. */
export interface IntakeDeps {
  config: Config;
  store: PaymentStore;
  now: () => number;
  fromBooks: FromBooks;
  /** Replicas to confirm a write on before its 202 (REDIS_WAIT_REPLICAS); null: none. */
  replicas: ReplicaWaiter | null;
}

/** Who asks, as the checks before the handler found it, and the body they read. */
export interface IntakeRequest {
  requestId: string;
  merchantId: string;
  body: unknown;
}

/** The intake handler: answers `res` (202) or throws the SluiceError to answer with. */
export type IntakeHandler = (req: IncomingMessage, res: ServerResponse, r: IntakeRequest) => Promise<void>;

/** The intake's handler over `deps`: providers, rates and ceilings are read once here, not per request. */
export function intakeHandler(deps: IntakeDeps): IntakeHandler {
  const { store, now, fromBooks } = deps;
  const currency = deps.config.PG_CURRENCY;
  const { providers, firstProvider, rateOf } = providerLimits(deps.config);
  const ceilingAll = [...providers.values()].reduce((a, p) => a + p.ceiling, 0);
  const schema = paymentRequestSchema(currency, [...providers.keys()]);

  return async (req, res, { requestId, merchantId, body: raw }) => {
    const idemKey = idempotencyKeyOf(req.headers['idempotency-key']);
    const body = parsePaymentRequest(schema, raw);
    const createdAt = now();
    // Validated by the schema: one of the providers (optional when there is only one).
    const provider = body.provider ?? firstProvider;
    const at = providers.get(provider)!;
    const idemHash = sha256Hex(idemKey);
    const p: NewPayment = {
      id: store.newId(createdAt, idemHash),
      merchantId,
      provider,
      paymentKey: body.paymentKey,
      orderId: body.orderId,
      amount: body.amount,
      currency,
      metadata: body.metadata ?? null,
      requestId,
      createdAt,
    };
    // The script fills in `eta` from the backlog it counts: the body sent is the body stored.
    const weight = merchantWeight(deps.config, merchantId);
    const mark = deps.replicas?.mark(p.id) ?? null;
    const result = await store.create(p, idemHash, fingerprintOf(body, currency, provider), (id) => bodyTemplate({ ...p, id }, at.rate), { all: ceilingAll, merchant: at.ceiling }, weight);
    switch (result.kind) {
      case 'created':
        await confirmReplicated(deps.replicas, mark, res);
        send202(res, result.id, result.body, false);
        return;
      case 'replay': {
        // The body sent then: rendered again from the payment while it is hot; once it is
        // archived (Redis kept the fingerprint and the id), from the books.
        const a = result.answer;
        const body =
          a.from === 'record' ? intakeBody(a.record, a.eta, rateOf(a.record.provider))
          : a.from === 'body' ? a.body
          : (await fromBooks(res, (b) => b.byId(result.id, paymentIdTime(result.id) ?? undefined)))?.intakeBody;
        if (!body) throw new SluiceError('BOOKS_UNAVAILABLE', 'The stored answer is not in the books yet; retry', 503, true);
        // The first answer may have been this 503: the payment is on a replica only once confirmed.
        await confirmReplicated(deps.replicas, mark, res);
        send202(res, result.id, body, true);
        return;
      }
      case 'reused':
        throw new SluiceError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different request', 422);
      case 'dup_payment_key':
        // Who holds it is not said: it may be another merchant's payment.
        throw new SluiceError('DUPLICATE_PAYMENT_KEY', 'A payment with this paymentKey already exists', 409);
      case 'dup_order_id':
        throw new SluiceError('DUPLICATE_ORDER_ID', 'A payment with this orderId already exists', 409);
      case 'backlog_full':
        res.setHeader('Retry-After', String(BACKLOG_RETRY_AFTER_SECONDS));
        // 503, never 429: the merchant is not over a limit of its own; Sluice is full.
        throw new SluiceError('BACKLOG_FULL', 'Sluice is at its backlog ceiling; retry later', 503, true);
      case 'merchant_backlog_full':
        // This merchant only: its payments waiting would not all reach the PG within the
        // ceiling at its share of the rate. Others are still accepted.
        res.setHeader('Retry-After', String(result.retryAfterSeconds));
        throw new SluiceError('MERCHANT_BACKLOG_FULL', 'Your payments waiting are at the backlog ceiling for your share of the PG; retry later', 503, true);
      case 'fenced':
        // Several shards: this request's first try left its claims and never wrote the payment,
        // and a sweep fenced it as this one came. Nothing was written; the retry starts afresh.
        res.setHeader('Retry-After', '1');
        throw new SluiceError('REDIS_UNAVAILABLE', 'The payment could not be written; retry with the same Idempotency-Key', 503, true);
      default:
        assertNever(result);
    }
  };
}

/** The steps Express's chain runs for the intake, each the function its middleware calls. */
export interface IntakeFrontDeps {
  handle: IntakeHandler;
  auth: MerchantAuth;
  bodyLimitBytes: number;
  /** helmet's headers (security-headers.ts). */
  securityHeaders: (res: ServerResponse) => void;
  /** Counts the answer for /metrics once `res` closes. */
  countAnswer: (res: ServerResponse) => void;
  logger: Logger;
}

/** The one path the front serves, with or without a query string (which the intake ignores, as Express's route does). */
const isIntakeUrl = (url: string | undefined): boolean => url === '/v1/payments' || (url !== undefined && url.startsWith('/v1/payments?'));

/**
 * Serves `POST /v1/payments` from Node's request and response: returns true when it took the
 * request, false when Express should have it.
 */
export function intakeFront(deps: IntakeFrontDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let requestId: string | undefined;
    try {
      deps.securityHeaders(res);
      requestId = takeRequestId(req, res);
      refuseRepeated(req.rawHeaders);
      deps.countAnswer(res);
      // Payment resources are private and change under the merchant's feet: never cached.
      res.setHeader('Cache-Control', 'no-store');
      const merchantId = deps.auth.authenticate(req, res);
      assertJsonType(req);
      const body = await readJsonBody(req, res, deps.bodyLimitBytes);
      await deps.handle(req, res, { requestId, merchantId, body });
    } catch (err) {
      sendError(deps.logger, err, req, res, requestId, '/v1/payments');
    }
  };
  return (req, res) => {
    if (req.method !== 'POST' || !isIntakeUrl(req.url)) return false;
    void serve(req, res);
    return true;
  };
}
