/**
 * `GET /v1/transactions`: the PG's book for reconciliation. Rows are kept sorted by
 * (transactionAt, transactionKey) as they are appended, so a page is a binary search plus a
 * slice, even with ~100k rows after a bench.
 */
import { parseIsoWithOffset } from './clock.ts';
import { errorAnswer, okAnswer } from './http-io.ts';
import type { Answer } from './idempotency.ts';
import type { TransactionRow } from './ledger.ts';

/** Contract: `limit` is at most 10,000. */
export const MAX_TRANSACTION_LIMIT = 10_000;
/** Toss v1's default page size. */
const DEFAULT_LIMIT = 100;

function invalid(message: string): Answer {
  return errorAnswer(400, 'INVALID_REQUEST', message);
}

/** First index whose commit ms is >= `ms`. */
function lowerBound(rows: readonly TransactionRow[], ms: number): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((rows[mid]?.atMs ?? 0) < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose transactionKey is > `key` (keys ascend with the rows). */
function afterKey(rows: readonly TransactionRow[], key: string): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((rows[mid]?.transactionKey ?? '') <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Answers a transactions query string. Both dates are required, ISO-8601 with an offset, and
 * inclusive. `startingAfter` is compared as a key: keys are zero-padded sequence numbers issued in
 * row order, so "after this key" is "later in the book" even for a key from before a reset.
 */
export function listTransactions(rows: readonly TransactionRow[], query: string): Answer {
  const params = new URLSearchParams(query);
  const startText = params.get('startDate');
  const endText = params.get('endDate');
  if (startText === null || endText === null) return invalid('startDate and endDate are required.');
  const start = parseIsoWithOffset(startText);
  const end = parseIsoWithOffset(endText);
  if (start === null || end === null) return invalid('Dates must be ISO-8601 with an offset.');
  const limitText = params.get('limit');
  const limit = limitText === null ? DEFAULT_LIMIT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_TRANSACTION_LIMIT) {
    return invalid(`limit must be an integer in 1..${MAX_TRANSACTION_LIMIT}.`);
  }
  const after = params.get('startingAfter');
  let from = lowerBound(rows, start);
  if (after !== null && after !== '') from = Math.max(from, afterKey(rows, after));

  const page: Omit<TransactionRow, 'atMs'>[] = [];
  for (let i = from; i < rows.length && page.length < limit; i++) {
    const row = rows[i] as TransactionRow;
    if (row.atMs > end) break;
    page.push({
      transactionKey: row.transactionKey,
      paymentKey: row.paymentKey,
      orderId: row.orderId,
      status: row.status,
      amount: row.amount,
      transactionAt: row.transactionAt,
    });
  }
  return okAnswer(JSON.stringify(page));
}
