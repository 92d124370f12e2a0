import { describe, expect, it } from 'vitest';
import { classify } from './pg-outcome.ts';
import { afterRefundCancel, afterRefundCheck, findCancel, type RefundContext } from './refunds.ts';

const ctx = (over: Partial<RefundContext> = {}): RefundContext => ({
  amount: 3_000, known: new Set(['tx-old']), retries: 0, sentAt: 1_000, now: 2_000, settleMs: 60_000,
  backoffBaseMs: 1_000, backoffMaxMs: 30_000, random: () => 0.5, ...over,
});
const payment = (status: string, cancels: { cancelAmount: number; transactionKey: string }[]) =>
  ({ transport: 'answered', httpStatus: 200, body: { paymentKey: 'pk', status, totalAmount: 10_000, balanceAmount: 1_000, cancels } }) as const;
const err = (httpStatus: number, code: string) => ({ transport: 'answered', httpStatus, body: { code, message: code } }) as const;

describe('a refund after the cancel answered', () => {
  it('a Payment that shows a new cancel of this amount: succeeded, with its transactionKey', () => {
    const o = classify('cancel', payment('PARTIAL_CANCELED', [{ cancelAmount: 3_000, transactionKey: 'tx-old' }, { cancelAmount: 3_000, transactionKey: 'tx-new' }]));
    expect(afterRefundCancel(o, ctx())).toEqual({ do: 'succeed', transactionKey: 'tx-new' });
    // The balance reaching 0 answers CANCELED: the same.
    expect(afterRefundCancel(classify('cancel', payment('CANCELED', [{ cancelAmount: 3_000, transactionKey: 'tx-9' }])), ctx())).toMatchObject({ do: 'succeed' });
  });

  it('a 200 that does not show it: not understood, so queried (never sent again)', () => {
    const o = classify('cancel', payment('PARTIAL_CANCELED', [{ cancelAmount: 3_000, transactionKey: 'tx-old' }]));
    expect(afterRefundCancel(o, ctx())).toMatchObject({ do: 'check', alert: expect.any(String) });
  });

  it('the PG refused it (stored 400s): failed with its code, nothing changed', () => {
    for (const code of ['NOT_CANCELABLE_AMOUNT', 'NOT_CANCELABLE_PAYMENT', 'ALREADY_CANCELED_PAYMENT']) {
      expect(afterRefundCancel(classify('cancel', err(400, code)), ctx())).toMatchObject({ do: 'fail', failure: { code } });
    }
  });

  it('a 5xx, no answer, or 409 processing: the outcome is not known, so it is queried, never resent', () => {
    for (const raw of [err(500, 'FAILED_INTERNAL_SYSTEM_PROCESSING'), err(502, 'PROVIDER_ERROR'), err(504, 'GATEWAY'), err(409, 'IDEMPOTENT_REQUEST_PROCESSING'), { transport: 'no_answer', reason: 'READ_TIMEOUT' } as const]) {
      expect(afterRefundCancel(classify('cancel', raw), ctx()).do).toBe('check');
    }
  });

  it('not processed by the PG (not sent, 429, 503): the same cancel again', () => {
    for (const raw of [err(429, 'TOO_MANY_REQUESTS'), err(503, 'TOO_MANY_CONNECTIONS'), { transport: 'not_sent', reason: 'ECONNREFUSED' } as const]) {
      expect(afterRefundCancel(classify('cancel', raw), ctx()).do).toBe('retry');
    }
    expect(afterRefundCancel(classify('cancel', err(401, 'UNAUTHORIZED_KEY')), ctx()).do).toBe('halt');
  });
});

describe('a refund in doubt after a query', () => {
  it('shows it: succeeded; does not yet: asked again until the settle time, then failed', () => {
    const withIt = classify('inquire', payment('PARTIAL_CANCELED', [{ cancelAmount: 3_000, transactionKey: 'tx-new' }]));
    expect(afterRefundCheck(withIt, ctx())).toEqual({ do: 'succeed', transactionKey: 'tx-new' });
    const without = classify('inquire', payment('DONE', []));
    expect(afterRefundCheck(without, ctx()).do).toBe('check');
    expect(afterRefundCheck(without, ctx({ now: 1_000 + 60_000 }))).toMatchObject({ do: 'fail', failure: { code: 'NOT_CANCELED_BY_PG' } });
  });

  it('silence never ends it: a 5xx or no answer is asked again, even past the settle time', () => {
    for (const raw of [err(500, 'FAILED_INTERNAL_SYSTEM_PROCESSING'), { transport: 'no_answer', reason: 'READ_TIMEOUT' } as const, err(404, 'NOT_FOUND_PAYMENT')]) {
      expect(afterRefundCheck(classify('inquire', raw), ctx({ now: 10_000_000 })).do).toBe('check');
    }
  });

  it('a cancel of the same amount Sluice already holds is not taken for this one', () => {
    expect(findCancel({ paymentKey: 'pk', status: 'PARTIAL_CANCELED', cancels: [{ cancelAmount: 3_000, transactionKey: 'tx-old' }] } as never, new Set(['tx-old']), 3_000)).toBeNull();
  });
});
