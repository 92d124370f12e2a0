/**
 * `POST /v1/payments/{id}/cancel`: a merchant cancels a payment, in whole or in part. The decision
 * (cancel at once, void the confirm under way, reserve against the balance, or refuse) is one
 * atomic step in Redis (store `RefundStore.request`, lua/refund.lua); the PG call, if one is
 * needed, is the worker's (its refunder, or the payment's own cancel path). Answers 202 with the
 * payment, its `balanceAmount` and its `cancels`.
 *
 * Idempotent like intake: the same Idempotency-Key with the same body answers the stored answer
 * (`Idempotent-Replayed: true`), with another body 422.
 */
import type { Request, Response, Router } from 'express';
import { hotWindowMs, providersOf, type Config } from '@sluice/config';
import { SluiceError } from '@sluice/domain';
import { newCancelId, paymentIdTime, RefundStore, refundStoreOptionsOf, type PaymentStore, type PgRate, type ReplicaWaiter } from '@sluice/store';
import type { BooksReader } from '@sluice/books';
import { confirmReplicated, PAYMENT_ID, paymentNotFound, send202, type FromBooks } from './answers.ts';
import { jsonBody, requireJson } from './json-body.ts';
import { cancelFingerprintOf, idempotencyKeyOf, parseCancelRequest, sha256Hex } from './payment-request.ts';
import { renderView } from './render.ts';
import type { ApiLocals } from './request-context.ts';

/** What the cancel route needs. */
export interface CancelRouteDeps {
  config: Config;
  store: PaymentStore;
  books: BooksReader | null;
  now: () => number;
  rateOf: (provider: string | null) => PgRate;
  /** A books read that answers 503 when the database fails. */
  fromBooks: FromBooks;
  /** Replicas to confirm the request on before its 202 (REDIS_WAIT_REPLICAS); null: none. */
  replicas: ReplicaWaiter | null;
}

/** Adds the cancel route to the merchant router (behind its auth). */
export function addCancelRoute(router: Router, deps: CancelRouteDeps): void {
  const { store, config } = deps;
  // Each provider's refunds are due at its own refunder, under its own breaker.
  const byProvider = new Map(providersOf(config).map((p) => [p.id, new RefundStore(store.redis, refundStoreOptionsOf(config), p.id)]));
  const [first] = byProvider.values();

  router.post('/v1/payments/:id/cancel', requireJson, jsonBody(config.BODY_LIMIT_BYTES), async (req: Request<{ id: string }>, res: Response<unknown, ApiLocals>) => {
    const idemKey = idempotencyKeyOf(req.headers['idempotency-key']);
    const body = parseCancelRequest(req.body);
    const id = req.params.id;
    if (!PAYMENT_ID.test(id)) throw paymentNotFound();
    const merchantId = res.locals.merchantId;

    let provider = await store.redis.hget(store.keys.shardOf(id).payment(id), 'provider');
    if (provider === null && deps.books) {
      // Past its hot window, Redis has forgotten the payment: put it back from the books (as
      // reconciliation does), so that the cancel takes the one path every cancel takes.
      const booked = await deps.fromBooks(res, (b) => b.byId(id, paymentIdTime(id) ?? undefined));
      if (booked && booked.snapshot.merchantId === merchantId) {
        await store.rehydrate(booked.snapshot, hotWindowMs(config));
        provider = await store.redis.hget(store.keys.shardOf(id).payment(id), 'provider');
      }
    }
    const refunds = (provider && byProvider.get(provider)) || first!;
    const idemHash = sha256Hex(idemKey);
    const mark = deps.replicas?.mark(id) ?? null;
    const result = await refunds.request({
      paymentId: id, merchantId, cancelId: newCancelId(deps.now()), amount: body.amount ?? null, reason: body.reason,
      idemKeyHash: idemHash, fingerprint: cancelFingerprintOf(id, body),
    });
    const current = async (): Promise<string> => {
      const v = await store.view(id);
      if (!v) throw paymentNotFound();
      return JSON.stringify(renderView(v, deps.now(), deps.rateOf(v.record.provider)));
    };
    switch (result.kind) {
      case 'ok': {
        const text = await current();
        await refunds.storeAnswer(id, merchantId, idemHash, text);
        await confirmReplicated(deps.replicas, mark, res);
        send202(res, id, text, false);
        return;
      }
      case 'replay':
        // The answer sent then; the payment as it is now if the first request died before storing it.
        await confirmReplicated(deps.replicas, mark, res);
        send202(res, id, result.body || (await current()), true);
        return;
      case 'reused':
        throw new SluiceError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different request', 422);
      case 'not_found':
        // Another merchant's payment answers exactly like one that does not exist.
        throw paymentNotFound();
      case 'not_yet':
        throw new SluiceError('NOT_CANCELABLE_YET', 'The payment is being confirmed: only a cancel of the whole amount is possible until it is approved', 409);
      case 'not_cancelable':
        throw new SluiceError('NOT_CANCELABLE', 'The payment is declined, failed or already canceled', 409);
      case 'exceeds':
        throw new SluiceError('CANCEL_AMOUNT_EXCEEDS_BALANCE', 'The amount is above the balance left, counting cancels still pending', 422);
    }
  });
}
