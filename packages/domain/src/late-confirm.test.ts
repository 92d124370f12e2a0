import { describe, expect, it } from 'vitest';
import { lateConfirmUntil, settlesTry, unreadConfirm } from './late-confirm.ts';
import { classify } from './pg-outcome.ts';

describe('may a confirm still land', () => {
  it('an answer from the PG settles its try; silence and a 5xx not its own do not', () => {
    expect(settlesTry(classify('confirm', { transport: 'answered', httpStatus: 200, body: { paymentKey: 'pk', status: 'DONE' } }))).toBe(true);
    expect(settlesTry(classify('confirm', { transport: 'not_sent', reason: 'ECONNREFUSED' }))).toBe(true);
    expect(settlesTry(classify('confirm', { transport: 'no_answer', reason: 'READ_TIMEOUT' }))).toBe(false);
    expect(settlesTry(classify('confirm', { transport: 'answered', httpStatus: 504, body: null }))).toBe(false);
  });
  it('some try is unread while tries outnumber settled ones, and could charge until the session ends', () => {
    expect(unreadConfirm({ attempts: 2, confirmsSettled: 1 })).toBe(true);
    expect(unreadConfirm({ attempts: 2, confirmsSettled: 2 })).toBe(false);
    expect(lateConfirmUntil({ unreadConfirm: true, createdAt: 1_000, lateConfirmHorizonMs: 31 * 60_000 })).toBe(1_000 + 31 * 60_000);
    expect(lateConfirmUntil({ unreadConfirm: false, createdAt: 1_000, lateConfirmHorizonMs: 31 * 60_000 })).toBe(0);
  });
});
