import { describe, expect, it } from 'vitest';
import { classify, isPgFailure, READ_TIMEOUT, type PgOutcome, type PgRaw } from './pg-outcome.ts';

const answered = (httpStatus: number, body: unknown): PgRaw => ({ transport: 'answered', httpStatus, body });
const err = (code: string, message = 'x') => ({ code, message });
const payment = (status: string, extra: Record<string, unknown> = {}) => ({ paymentKey: 'pk', orderId: 'order-1', status, ...extra });

describe('the outcome table', () => {
  const rows: [string, PgRaw, PgOutcome['kind'], Record<string, unknown>?][] = [
    ['connect refused → not sent', { transport: 'not_sent', reason: 'ECONNREFUSED' }, 'not_sent'],
    ['read timeout → in doubt', { transport: 'no_answer', reason: 'UND_ERR_HEADERS_TIMEOUT' }, 'in_doubt', { alert: false }],
    ['dropped after send → in doubt', { transport: 'no_answer', reason: 'UND_ERR_SOCKET' }, 'in_doubt'],
    ['500 FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING → in doubt', answered(500, err('FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING')), 'in_doubt', { alert: false }],
    ['500 FAILED_INTERNAL_SYSTEM_PROCESSING → in doubt', answered(500, err('FAILED_INTERNAL_SYSTEM_PROCESSING')), 'in_doubt', { alert: false }],
    ['502 PROVIDER_ERROR → in doubt', answered(502, err('PROVIDER_ERROR')), 'in_doubt', { alert: false }],
    ['409 IDEMPOTENT_REQUEST_PROCESSING → in progress', answered(409, err('IDEMPOTENT_REQUEST_PROCESSING')), 'in_progress'],
    ['400 ALREADY_PROCESSED_PAYMENT → in doubt (inquire)', answered(400, err('ALREADY_PROCESSED_PAYMENT')), 'in_doubt'],
    ['403 REJECT_CARD_COMPANY → declined', answered(403, err('REJECT_CARD_COMPANY')), 'declined', { code: 'REJECT_CARD_COMPANY' }],
    ['403 NOT_ENOUGH_BALANCE → declined', answered(403, err('NOT_ENOUGH_BALANCE')), 'declined'],
    ['403 INVALID_CARD_EXPIRATION → declined', answered(403, err('INVALID_CARD_EXPIRATION')), 'declined'],
    ['403 EXCEED_MAX_AMOUNT → declined', answered(403, err('EXCEED_MAX_AMOUNT')), 'declined'],
    ['403 CANCELED_DURING_PROCESSING → canceled, not a decline', answered(403, err('CANCELED_DURING_PROCESSING')), 'canceled'],
    ['403 unknown code → in doubt + alert', answered(403, err('SOMETHING_NEW')), 'in_doubt', { alert: true }],
    ['404 NOT_FOUND_PAYMENT_SESSION → failed', answered(404, err('NOT_FOUND_PAYMENT_SESSION')), 'failed', { ourBug: false }],
    ['404 NOT_FOUND_PAYMENT → nothing at the PG', answered(404, err('NOT_FOUND_PAYMENT')), 'nothing_at_pg'],
    ['400 INVALID_REQUEST → failed, our bug', answered(400, err('INVALID_REQUEST')), 'failed', { ourBug: true }],
    ['400 DUPLICATED_ORDER_ID → failed', answered(400, err('DUPLICATED_ORDER_ID')), 'failed'],
    ['429 → not sent + alert', answered(429, err('TOO_MANY_REQUESTS')), 'not_sent', { alert: true }],
    ['503 TOO_MANY_CONNECTIONS → not sent + alert', answered(503, err('TOO_MANY_CONNECTIONS')), 'not_sent', { alert: true }],
    ['401 → auth error', answered(401, err('UNAUTHORIZED_KEY')), 'auth_error'],
    ['200 DONE → approved', answered(200, payment('DONE', { transactionKey: 'tx' })), 'approved'],
    ['200 ABORTED → declined', answered(200, payment('ABORTED', { failure: { code: 'REJECT_CARD_COMPANY' } })), 'declined', { code: 'REJECT_CARD_COMPANY' }],
    ['200 CANCELED → canceled', answered(200, payment('CANCELED')), 'canceled'],
    ['200 IN_PROGRESS → in progress', answered(200, payment('IN_PROGRESS')), 'in_progress'],
    ['200 cancel of nothing → nothing at the PG', answered(200, { paymentKey: 'pk', status: 'NOT_FOUND', cancels: [] }), 'nothing_at_pg'],
    ['200 READY (unknown) → in doubt + alert', answered(200, payment('READY')), 'in_doubt', { alert: true }],
    ['200 PARTIAL_CANCELED → approved (a smaller balance)', answered(200, payment('PARTIAL_CANCELED')), 'approved'],
    ['200 without a body → in doubt + alert', answered(200, null), 'in_doubt', { alert: true }],
    ['504 (no code) → in doubt + alert', answered(504, null), 'in_doubt', { alert: true }],
    ['418 → in doubt + alert', answered(418, err('TEAPOT')), 'in_doubt', { alert: true }],
  ];
  it.each(rows)('%s', (_name, raw, kind, fields) => {
    const o = classify('confirm', raw);
    expect(o.kind).toBe(kind);
    if (fields) expect(o).toMatchObject(fields);
  });

  it('never throws on odd bodies', () => {
    for (const body of [undefined, 'text', 42, [], { code: 5 }, { status: 7 }]) {
      expect(() => classify('inquire', answered(500, body))).not.toThrow();
      expect(() => classify('inquire', answered(200, body))).not.toThrow();
    }
  });

  it('counts silence and 5xx as PG failures for the breaker, and answers (declines, 4xx, 429) not', () => {
    expect(isPgFailure({ transport: 'no_answer', reason: 't' })).toBe(true);
    // A read timeout at the upper bound is a failure; one at the adaptive value (a slow PG that
    // answers the rest) is not.
    expect(isPgFailure({ transport: 'no_answer', reason: READ_TIMEOUT.atMax })).toBe(true);
    expect(isPgFailure({ transport: 'no_answer', reason: READ_TIMEOUT.adaptive })).toBe(false);
    expect(isPgFailure({ transport: 'not_sent', reason: 'ECONNREFUSED' })).toBe(true);
    // Held back on our side: no news of the PG either way.
    expect(isPgFailure({ transport: 'not_sent', reason: 'pool_wait_timeout' })).toBe(false);
    expect(isPgFailure({ transport: 'not_sent', reason: 'late_permits' })).toBe(false);
    expect(isPgFailure(answered(502, err('PROVIDER_ERROR')))).toBe(true);
    expect(isPgFailure(answered(503, err('TOO_MANY_CONNECTIONS')))).toBe(true);
    expect(isPgFailure(answered(403, err('REJECT_CARD_COMPANY')))).toBe(false);
    expect(isPgFailure(answered(429, err('TOO_MANY_REQUESTS')))).toBe(false);
    expect(isPgFailure(answered(200, payment('DONE')))).toBe(false);
    expect(isPgFailure(answered(401, err('UNAUTHORIZED_KEY')))).toBe(true);
  });
});
