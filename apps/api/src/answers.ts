/**
 * What the payment routes (intake, reads, cancels) answer alike: the 202 with the payment's
 * Location, the 404 of a payment that is not there (or not this merchant's), the 503 of books
 * that do not answer, and the shape of an id worth asking Redis about. On Node's own response
 * (which Express's extends): the intake is served ahead of Express (intake-front.ts).
 */
import type { ServerResponse } from 'node:http';
import { SluiceError } from '@sluice/domain';
import type { BooksReader } from '@sluice/books';
import type { ReplicaWaiter, WriteMark } from '@sluice/store';

/** Ids are ours (`pay_…`); anything else cannot exist, so it is a 404 without asking Redis. */
export const PAYMENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * The 202, written with Node's own `end` rather than Express's `send`, which would parse and
 * re-format the Content-Type we set and compute the length itself: the same bytes and headers
 * (Node adds Content-Length for a body given to `end`), for less CPU on the hot path.
 */
export function send202(res: ServerResponse, id: string, body: string, replayed: boolean): void {
  res.statusCode = 202;
  res.setHeader('Location', `/v1/payments/${id}`);
  if (replayed) res.setHeader('Idempotent-Replayed', 'true');
  res.setHeader('Content-Type', JSON_CONTENT_TYPE);
  res.end(body);
}

/** A payment that does not exist, or is another merchant's: the same answer (no BOLA oracle). */
export const paymentNotFound = (): SluiceError => new SluiceError('NOT_FOUND', 'No such payment', 404);

/** What a merchant is told to wait when no replica confirmed its write in time. */
const REPLICA_RETRY_AFTER_SECONDS = 1;

/**
 * Before a 202 (REDIS_WAIT_REPLICAS): the write, and everything before it, on the replicas. If they
 * do not confirm in time, 503: the write stays where it is and the merchant's retry with the same
 * key replays it, waiting again; a 202 is never given for a write a failover could take back.
 */
export async function confirmReplicated(replicas: ReplicaWaiter | null, mark: WriteMark | null, res: ServerResponse): Promise<void> {
  if (!replicas || !mark) return;
  if (await replicas.confirm(mark)) return;
  res.setHeader('Retry-After', String(REPLICA_RETRY_AFTER_SECONDS));
  throw new SluiceError('REPLICA_UNCONFIRMED', 'Recorded, but no Redis replica confirmed it in time; retry with the same Idempotency-Key', 503, true);
}

/** How long a merchant is told to wait when the books do not answer. */
const BOOKS_RETRY_AFTER_SECONDS = 5;

/** A read of the books for a route's answer. */
export type FromBooks = <T>(res: ServerResponse, read: (b: BooksReader) => Promise<T>) => Promise<T>;

/** Reads of `books` (null: not configured); the database failing is a 503 the merchant may retry, never a 500. */
export function fromBooksOf(books: BooksReader | null): FromBooks {
  return async (res, read) => {
    if (!books) throw new SluiceError('BOOKS_UNAVAILABLE', 'The books are not configured (DATABASE_URL)', 503);
    try {
      return await read(books);
    } catch (err) {
      res.setHeader('Retry-After', String(BOOKS_RETRY_AFTER_SECONDS));
      throw new SluiceError('BOOKS_UNAVAILABLE', 'The books did not answer; retry', 503, true, undefined, { cause: err });
    }
  };
}
