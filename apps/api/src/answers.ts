/**
 * What the payment routes (intake, reads, cancels) answer alike: the 202 with the payment's
 * Location, the 404 of a payment that is not there (or not this merchant's), and the shape of an id
 * worth asking Redis about.
 */
import type { Response } from 'express';
import { SluiceError } from '@sluice/domain';

/** Ids are ours (`pay_…`); anything else cannot exist, so it is a 404 without asking Redis. */
export const PAYMENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * The 202, written with Node's own `end` rather than Express's `send`, which would parse and
 * re-format the Content-Type we set and compute the length itself: the same bytes and headers
 * (Node adds Content-Length for a body given to `end`), for less CPU on the hot path.
 */
export function send202(res: Response, id: string, body: string, replayed: boolean): void {
  res.statusCode = 202;
  res.setHeader('Location', `/v1/payments/${id}`);
  if (replayed) res.setHeader('Idempotent-Replayed', 'true');
  res.setHeader('Content-Type', JSON_CONTENT_TYPE);
  res.end(body);
}

/** A payment that does not exist, or is another merchant's: the same answer (no BOLA oracle). */
export const paymentNotFound = (): SluiceError => new SluiceError('NOT_FOUND', 'No such payment', 404);
