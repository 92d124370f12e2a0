/**
 * The merchant routes: intake (`POST /v1/payments`) and status reads, which may long-poll
 * (`?wait=N`, see long-poll.ts) and carry the `eta` of a QUEUED payment.
 *
 * The POST is the hot path, measured against a no-op Express JSON route: it validates in
 * memory, renders its 202 body up front (with a hole for `eta`, which the script fills from the
 * merchant's place in the fair share), and makes exactly one Redis round trip (the intake
 * script). The 202 is sent once Redis has acknowledged the script, which put the payment in its
 * merchant's fair queue: the workers admit it from there by turns between merchants, and add its
 * confirm job then.
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import { merchantWeight, providersOf, type Config } from '@sluice/config';
import { assertNever, isFinalStatus, SluiceError } from '@sluice/domain';
import { parseRecord, paymentIdTime, type NewPayment, type PaymentStore, type PaymentView, type PgRate, type ReplicaWaiter } from '@sluice/store';
import type { BooksReader } from '@sluice/books';
import type { MerchantAuth } from './auth.ts';
import { confirmReplicated, PAYMENT_ID, paymentNotFound, send202 } from './answers.ts';
import { addCancelRoute } from './cancels.ts';
import { jsonBody, requireJson } from './json-body.ts';
import type { FinalWaiters } from './long-poll.ts';
import { fingerprintOf, idempotencyKeyOf, listQueryOf, ORDER_ID, parsePaymentRequest, paymentRequestSchema, sha256Hex, summaryQueryOf, waitSecondsOf } from './payment-request.ts';
import { bodyTemplate, intakeBody, renderPayment, renderView } from './render.ts';
import type { ApiLocals } from './request-context.ts';

/** What the payment routes need: the store, the long-poll waiters, the books and the config. */
export interface PaymentRouteDeps {
  config: Config;
  store: PaymentStore;
  auth: MerchantAuth;
  now: () => number;
  /** Long polls (`?wait=N`) wait here. */
  waiters: FinalWaiters;
  /** The books: payments Redis has forgotten, lists and summaries. Null without DATABASE_URL. */
  books: BooksReader | null;
  /** Replicas to confirm a write on before its 202 (REDIS_WAIT_REPLICAS); null: none. */
  replicas: ReplicaWaiter | null;
}

/** How long a merchant is told to wait when the books do not answer. */
const BOOKS_RETRY_AFTER_SECONDS = 5;

type Res = Response<unknown, ApiLocals>;

/** What a merchant is told to wait when the backlog is full: long enough for the PG to drain some. */
export const BACKLOG_RETRY_AFTER_SECONDS = 30;

/**
 * The backlog ceiling in PG send slots: BACKLOG_MAX_SECONDS of work at the PG's rate limit
 * (PG_RATE_LIMIT calls per PG_RATE_WINDOW_MS), never below one. It bounds the payments not
 * final, and each merchant's payments waiting at its share of the rate.
 */
export function backlogCeiling(c: Pick<Config, 'BACKLOG_MAX_SECONDS' | 'PG_RATE_LIMIT' | 'PG_RATE_WINDOW_MS'>): number {
  return Math.max(1, Math.floor((c.BACKLOG_MAX_SECONDS * 1000 * c.PG_RATE_LIMIT) / c.PG_RATE_WINDOW_MS));
}


/** A payment read from the books, as a view: the same record as Redis held, and no backlog rank (it is final or drained). */
const bookedView = (booked: { snapshot: Record<string, string> } | null): PaymentView | null => {
  const record = booked ? parseRecord(booked.snapshot) : null;
  return record ? { record, slots: null } : null;
};

/** The `/v1/payments` routes, behind merchant auth. */
export function paymentRoutes(deps: PaymentRouteDeps): Router {
  const { store, now, waiters, books } = deps;

  /** A books read; the database failing is a 503 the merchant may retry, never a 500. */
  const fromBooks = async <T>(res: Res, read: (b: BooksReader) => Promise<T>): Promise<T> => {
    if (!books) throw new SluiceError('BOOKS_UNAVAILABLE', 'The books are not configured (DATABASE_URL)', 503);
    try {
      return await read(books);
    } catch (err) {
      res.set('Retry-After', String(BOOKS_RETRY_AFTER_SECONDS));
      throw new SluiceError('BOOKS_UNAVAILABLE', 'The books did not answer; retry', 503, true, undefined, { cause: err });
    }
  };
  /** A payment: from Redis while it is hot, then from the books, in the same shape (a final payment has no rank). */
  const viewOf = async (res: Res, id: string): Promise<PaymentView | null> => {
    const hot = await store.view(id);
    if (hot || !books) return hot;
    return bookedView(await fromBooks(res, (b) => b.byId(id, paymentIdTime(id) ?? undefined)));
  };
  const currency = deps.config.PG_CURRENCY;
  // Each provider's rate (for the eta) and backlog ceiling (for its merchants' queues); the
  // ceiling of all payments not final is the sum of the providers'.
  const providers = new Map(
    providersOf(deps.config).map((p) => [p.id, { rate: { windowMs: p.config.PG_RATE_WINDOW_MS, limit: p.config.PG_RATE_LIMIT } as PgRate, ceiling: backlogCeiling(p.config) }]),
  );
  const [firstProvider] = providers.keys();
  const ceilingAll = [...providers.values()].reduce((a, p) => a + p.ceiling, 0);
  const rateOf = (provider: string | null): PgRate => (providers.get(provider ?? firstProvider!) ?? providers.get(firstProvider!)!).rate;
  const schema = paymentRequestSchema(currency, [...providers.keys()]);
  const router = Router();

  const authenticate = deps.auth.middleware();
  router.use(['/v1/payments', '/v1/summary'], (req: Request, res: Res, next: NextFunction) => {
    // Payment resources are private and change under the merchant's feet: never cached.
    res.setHeader('Cache-Control', 'no-store');
    authenticate(req, res, next);
  });

  router.post(
    '/v1/payments',
    requireJson,
    jsonBody(deps.config.BODY_LIMIT_BYTES),
    async (req: Request, res: Res) => {
      const idemKey = idempotencyKeyOf(req.headers['idempotency-key']);
      const body = parsePaymentRequest(schema, req.body);
      const { merchantId, requestId } = res.locals;
      const createdAt = now();
      // Validated by the schema: one of the providers (optional when there is only one).
      const provider = body.provider ?? firstProvider!;
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
          res.set('Retry-After', String(BACKLOG_RETRY_AFTER_SECONDS));
          // 503, never 429: the merchant is not over a limit of its own; Sluice is full.
          throw new SluiceError('BACKLOG_FULL', 'Sluice is at its backlog ceiling; retry later', 503, true);
        case 'merchant_backlog_full':
          // This merchant only: its payments waiting would not all reach the PG within the
          // ceiling at its share of the rate. Others are still accepted.
          res.set('Retry-After', String(result.retryAfterSeconds));
          throw new SluiceError('MERCHANT_BACKLOG_FULL', 'Your payments waiting are at the backlog ceiling for your share of the PG; retry later', 503, true);
        case 'fenced':
          // Several shards: this request's first try left its claims and never wrote the payment,
          // and a sweep fenced it as this one came. Nothing was written; the retry starts afresh.
          res.set('Retry-After', '1');
          throw new SluiceError('REDIS_UNAVAILABLE', 'The payment could not be written; retry with the same Idempotency-Key', 503, true);
        default:
          assertNever(result);
      }
    },
  );

  router.get('/v1/payments/:id', async (req: Request<{ id: string }>, res: Res) => {
    const waitSeconds = waitSecondsOf(req.query.wait);
    const id = req.params.id;
    if (!PAYMENT_ID.test(id)) throw paymentNotFound();
    const merchantId = res.locals.merchantId;
    const read = async (): Promise<PaymentView> => {
      const v = await viewOf(res, id);
      // Another merchant's payment answers exactly like one that does not exist (no BOLA oracle).
      if (!v || v.record.merchantId !== merchantId) throw paymentNotFound();
      return v;
    };
    let v = await read();
    if (waitSeconds > 0 && !isFinalStatus(v.record.status)) {
      v = await waitForFinal(waiters, id, waitSeconds * 1_000, read, res);
      // The client went away while waiting: nobody to answer.
      if (res.writableEnded || res.destroyed) return;
    }
    res.json(renderView(v, now(), rateOf(v.record.provider)));
  });

  router.get('/v1/payments', async (req: Request, res: Res) => {
    if (req.query.orderId === undefined) {
      // The merchant's payments from the books, newest first, a page at a time.
      const q = listQueryOf(req.query);
      const page = await fromBooks(res, (b) => b.list(res.locals.merchantId, q));
      const data = page.payments.map((snapshot) => parseRecord(snapshot)).filter((r) => r !== null).map((r) => renderPayment(r, null));
      res.json({ data, hasMore: page.hasMore, nextStartingAfter: page.hasMore ? (data[data.length - 1]?.id ?? null) : null });
      return;
    }
    const orderId = ORDER_ID.safeParse(req.query.orderId);
    if (!orderId.success) {
      throw new SluiceError('INVALID_REQUEST', 'orderId is malformed', 400, false, [
        { path: 'query.orderId', code: 'invalid', message: orderId.error.issues[0]?.message ?? 'invalid' },
      ]);
    }
    let v = await store.viewByOrderId(orderId.data);
    if (!v && books) v = bookedView(await fromBooks(res, (b) => b.byOrderId(orderId.data)));
    if (!v || v.record.merchantId !== res.locals.merchantId) throw paymentNotFound();
    res.json(renderView(v, now(), rateOf(v.record.provider)));
  });

  addCancelRoute(router, { config: deps.config, store, books, now, rateOf, fromBooks, replicas: deps.replicas });

  router.get('/v1/summary/daily', async (req: Request, res: Res) => {
    const q = summaryQueryOf(req.query);
    const days = await fromBooks(res, (b) => b.dailySummary(res.locals.merchantId, q.fromMs, q.toMs));
    if (q.format === 'csv' || (q.format === undefined && req.accepts(['application/json', 'text/csv']) === 'text/csv')) {
      const kinds = ['approved', 'declined', 'failed', 'canceled', 'open', 'refunded'] as const;
      const head = ['day', ...kinds.flatMap((k) => [`${k}_count`, `${k}_amount`])].join(',');
      const lines = days.map((d) => [d.day, ...kinds.flatMap((k) => [d[k].count, d[k].amount])].join(','));
      res.type('text/csv').send([head, ...lines].join('\n') + '\n');
      return;
    }
    res.json({ currency, days });
  });

  return router;
}

/**
 * Waits until the payment is final or `timeoutMs` passed, and returns it as read last. The waiter
 * is registered before the subscription is confirmed and the payment read again after it, so a
 * payment that became final between the first read and the subscription is not missed.
 */
async function waitForFinal(
  waiters: FinalWaiters,
  id: string,
  timeoutMs: number,
  read: () => Promise<PaymentView>,
  res: Res,
): Promise<PaymentView> {
  let w: ReturnType<FinalWaiters['wait']>;
  try {
    w = waiters.wait(id, timeoutMs);
  } catch (err) {
    // TOO_MANY_WAITERS: a waiter frees up within the longest wait; most much sooner.
    res.set('Retry-After', '1');
    throw err;
  }
  // 'close' on the response: the answer was sent, or the connection is gone before it was.
  const onClose = (): void => w.cancel();
  res.once('close', onClose);
  try {
    await w.subscribed;
    const v = await read();
    if (isFinalStatus(v.record.status)) return v;
    const outcome = await w.settled;
    // A client that left gets no answer: skip the read.
    return outcome === 'canceled' ? v : await read();
  } finally {
    w.cancel();
    res.off('close', onClose);
  }
}
