/**
 * The merchant routes: intake (`POST /v1/payments`, whose handler is intake.ts's) and status
 * reads, which may long-poll (`?wait=N`, see long-poll.ts) and carry the `eta` of a QUEUED
 * payment; lists and summaries from the books; cancels (cancels.ts).
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Config } from '@sluice/config';
import { isFinalStatus, SluiceError } from '@sluice/domain';
import { parseRecord, paymentIdTime, type PaymentStore, type PaymentView, type ReplicaWaiter } from '@sluice/store';
import type { BooksReader } from '@sluice/books';
import type { MerchantAuth } from './auth.ts';
import { fromBooksOf, PAYMENT_ID, paymentNotFound } from './answers.ts';
import { addCancelRoute } from './cancels.ts';
import { providerLimits, type IntakeHandler } from './intake.ts';
import { jsonBody, requireJson } from './json-body.ts';
import type { FinalWaiters } from './long-poll.ts';
import { listQueryOf, ORDER_ID, summaryQueryOf, waitSecondsOf } from './payment-request.ts';
import { renderPayment, renderView } from './render.ts';
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
  /** The intake's handler (intake.ts), the same the intake front runs. */
  intake: IntakeHandler;
}

type Res = Response<unknown, ApiLocals>;

/** A payment read from the books, as a view: the same record as Redis held, and no backlog rank (it is final or drained). */
const bookedView = (booked: { snapshot: Record<string, string> } | null): PaymentView | null => {
  const record = booked ? parseRecord(booked.snapshot) : null;
  return record ? { record, slots: null } : null;
};

/** The `/v1/payments` routes, behind merchant auth. */
export function paymentRoutes(deps: PaymentRouteDeps): Router {
  const { store, now, waiters, books } = deps;

  const fromBooks = fromBooksOf(books);
  /** A payment: from Redis while it is hot, then from the books, in the same shape (a final payment has no rank). */
  const viewOf = async (res: Res, id: string): Promise<PaymentView | null> => {
    const hot = await store.view(id);
    if (hot || !books) return hot;
    return bookedView(await fromBooks(res, (b) => b.byId(id, paymentIdTime(id) ?? undefined)));
  };
  const currency = deps.config.PG_CURRENCY;
  const { rateOf } = providerLimits(deps.config);
  const router = Router();

  const authenticate = deps.auth.middleware();
  router.use(['/v1/payments', '/v1/summary'], (req: Request, res: Res, next: NextFunction) => {
    // Payment resources are private and change under the merchant's feet: never cached.
    res.setHeader('Cache-Control', 'no-store');
    authenticate(req, res, next);
  });

  // Served ahead of Express by the intake front; this route serves the paths Express also matches
  // (`/v1/payments/`, another case) with the same handler.
  router.post('/v1/payments', requireJson, jsonBody(deps.config.BODY_LIMIT_BYTES), async (req: Request, res: Res) => {
    await deps.intake(req, res, { requestId: res.locals.requestId, merchantId: res.locals.merchantId, body: req.body });
  });

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
