import { describe, expect, it } from 'vitest';
import { afterCancel, afterConfirm, afterInquiry, backoffMs, DEFAULT_RESOLUTION_POLICY, firstInquiryDelay, type StepContext } from './decide.ts';
import { mayLandLater } from './late-confirm.ts';
import { classify, type PgOutcome } from './pg-outcome.ts';

const T0 = Date.UTC(2026, 0, 1);
const ctx = (over: Partial<StepContext> = {}): StepContext => ({
  policy: DEFAULT_RESOLUTION_POLICY,
  retries: 0,
  reconfirms: 0,
  now: T0,
  createdAt: T0,
  unreadConfirm: false,
  cancels: 0,
  confirmSentAt: T0,
  typicalConfirmMs: null,
  random: () => 0.5,
  ...over,
});
const done = { paymentKey: 'pk', status: 'DONE', transactionKey: 'tx-1', approvedAt: '2026-01-01T00:00:00+09:00' };

describe('after a confirm', () => {
  it('finalises only definite answers', () => {
    expect(afterConfirm({ kind: 'approved', payment: done }, ctx())).toEqual({
      do: 'finalize', status: 'APPROVED', pg: { transactionKey: 'tx-1', approvedAt: '2026-01-01T00:00:00+09:00' },
    });
    expect(afterConfirm({ kind: 'declined', code: 'REJECT_CARD_COMPANY', message: 'm' }, ctx())).toMatchObject({ do: 'finalize', status: 'DECLINED', failure: { code: 'REJECT_CARD_COMPANY' } });
    expect(afterConfirm({ kind: 'canceled' }, ctx())).toMatchObject({ do: 'finalize', status: 'CANCELED' });
    expect(afterConfirm({ kind: 'failed', code: 'NOT_FOUND_PAYMENT_SESSION', message: '', ourBug: false }, ctx())).toMatchObject({ do: 'finalize', status: 'FAILED' });
  });
  it('sends everything unclear to inquiry, never to FAILED', () => {
    const unclear: PgOutcome[] = [
      { kind: 'in_doubt', reason: 'UND_ERR_HEADERS_TIMEOUT', alert: false },
      { kind: 'in_doubt', reason: 'READY', alert: true },
      { kind: 'in_progress' },
    ];
    for (const o of unclear) expect(afterConfirm(o, ctx())).toMatchObject({ do: 'inquire', delayMs: 1_000, answered: false });
  });
  it('tells a confirm the PG may not have read yet (no answer, a 5xx not its own) from one it read', () => {
    const lands = (raw: Parameters<typeof classify>[1]) => mayLandLater(classify('confirm', raw));
    expect(lands({ transport: 'no_answer', reason: 'UND_ERR_HEADERS_TIMEOUT' })).toBe(true);
    expect(lands({ transport: 'answered', httpStatus: 504, body: '<html>' })).toBe(true);
    for (const [status, code] of [[500, 'FAILED_INTERNAL_SYSTEM_PROCESSING'], [502, 'PROVIDER_ERROR'], [409, 'IDEMPOTENT_REQUEST_PROCESSING'], [403, 'SOMETHING_NEW']] as const) {
      expect(lands({ transport: 'answered', httpStatus: status, body: { code, message: '' } }), `${status}`).toBe(false);
    }
    expect(lands({ transport: 'not_sent', reason: 'ECONNREFUSED' })).toBe(false);
  });
  it('retries what was not sent with backoff, and halts on 401', () => {
    expect(afterConfirm({ kind: 'not_sent', reason: 'ECONNREFUSED', alert: false }, ctx({ retries: 2 }))).toEqual({ do: 'retry', delayMs: 3_000 });
    expect(afterConfirm({ kind: 'auth_error' }, ctx())).toMatchObject({ do: 'halt' });
  });
});

describe('after an inquiry', () => {
  it('maps the PG status: DONE → APPROVED, ABORTED → DECLINED, CANCELED → CANCELED', () => {
    expect(afterInquiry({ kind: 'approved', payment: done }, ctx())).toMatchObject({ status: 'APPROVED' });
    expect(afterInquiry({ kind: 'declined', code: 'NOT_ENOUGH_BALANCE', message: '' }, ctx())).toMatchObject({ status: 'DECLINED' });
    expect(afterInquiry({ kind: 'canceled' }, ctx())).toMatchObject({ status: 'CANCELED' });
  });
  it('keeps asking while IN_PROGRESS on a schedule that grows with the time since the confirm', () => {
    // Asked 3 s after the confirm: again when 2 × that has passed (3 s later), then 12 s, 24 s.
    const at = (sinceMs: number) => afterInquiry({ kind: 'in_progress' }, ctx({ now: T0 + sinceMs }));
    expect(at(3_000)).toEqual({ do: 'inquire', delayMs: 3_000, answered: true });
    expect(at(6_000)).toEqual({ do: 'inquire', delayMs: 6_000, answered: true });
    // A policy's own factor: 2.5 asks 4.5 s after a confirm 3 s old.
    expect(afterInquiry({ kind: 'in_progress' }, ctx({ now: T0 + 3_000, policy: { ...DEFAULT_RESOLUTION_POLICY, inquiryGrowth: 2.5 } }))).toEqual({ do: 'inquire', delayMs: 4_500, answered: true });
    // Never sooner than the first look, never past the backoff cap or the cancel deadline.
    expect(at(100)).toEqual({ do: 'inquire', delayMs: 1_000, answered: true });
    expect(at(33_000)).toEqual({ do: 'inquire', delayMs: 27_000, answered: true });
    expect(at(59_000)).toEqual({ do: 'inquire', delayMs: 1_000, answered: true });
  });
  it('cancels by time since the confirm, not by how many inquiries were answered', () => {
    const deadline = DEFAULT_RESOLUTION_POLICY.cancelAfterMs;
    expect(afterInquiry({ kind: 'in_progress' }, ctx({ now: T0 + deadline - 1 }))).toMatchObject({ do: 'inquire' });
    expect(afterInquiry({ kind: 'in_progress' }, ctx({ now: T0 + deadline }))).toEqual({ do: 'cancel' });
    // A re-confirm starts the clock again: the deadline runs from the latest confirm.
    expect(afterInquiry({ kind: 'in_progress' }, ctx({ now: T0 + deadline + 5_000, confirmSentAt: T0 + 10_000 }))).toMatchObject({ do: 'inquire' });
    // A policy with a longer deadline keeps asking where the default would cancel.
    const patient = { ...DEFAULT_RESOLUTION_POLICY, cancelAfterMs: 120_000 };
    expect(afterInquiry({ kind: 'in_progress' }, ctx({ policy: patient, now: T0 + 90_000 }))).toMatchObject({ do: 'inquire', delayMs: 30_000 });
  });
  it('takes its first look after the PG\'s typical confirm latency, at most the policy\'s first delay', () => {
    expect(firstInquiryDelay({ policy: DEFAULT_RESOLUTION_POLICY, typicalConfirmMs: 340.4 })).toBe(340);
    expect(firstInquiryDelay({ policy: DEFAULT_RESOLUTION_POLICY, typicalConfirmMs: 4_000 })).toBe(1_000);
    expect(firstInquiryDelay({ policy: DEFAULT_RESOLUTION_POLICY, typicalConfirmMs: null })).toBe(1_000);
    expect(afterConfirm({ kind: 'in_doubt', reason: 'READ_TIMEOUT', alert: false, unread: true }, ctx({ typicalConfirmMs: 300 }))).toMatchObject({ do: 'inquire', delayMs: 300 });
  });
  it('does not count silence toward the deadline (an outage never rushes cancels)', () => {
    const late = T0 + 10 * 60_000;
    for (let i = 0; i < 50; i++) {
      const s = afterInquiry({ kind: 'in_doubt', reason: 'UND_ERR_HEADERS_TIMEOUT', alert: false }, ctx({ now: late, retries: i }));
      expect(s).toMatchObject({ do: 'inquire', answered: false });
    }
    expect(afterInquiry({ kind: 'not_sent', reason: 'ECONNREFUSED', alert: false }, ctx({ now: late }))).toMatchObject({ do: 'inquire', answered: false });
  });
  it('re-confirms a bounded number of times when the PG holds nothing, then cancels', () => {
    expect(afterInquiry({ kind: 'nothing_at_pg' }, ctx({ reconfirms: 0 }))).toEqual({ do: 'reconfirm' });
    expect(afterInquiry({ kind: 'nothing_at_pg' }, ctx({ reconfirms: 2 }))).toEqual({ do: 'cancel' });
    // Once Sluice has decided to cancel, it never confirms again, whatever sent it back to inquiry.
    expect(afterInquiry({ kind: 'nothing_at_pg' }, ctx({ reconfirms: 0, cancels: 1 }))).toEqual({ do: 'cancel' });
  });
  it('counts an unknown status as answered, with an alert', () => {
    expect(afterInquiry({ kind: 'in_doubt', reason: 'unknown payment status READY', alert: true }, ctx())).toMatchObject({ do: 'inquire', answered: true, alert: expect.stringContaining('READY') });
  });
  it('does not count any 5xx toward the deadline, known code or not: it is silence, not an answer', () => {
    for (const [status, body] of [[500, { code: 'FAILED_INTERNAL_SYSTEM_PROCESSING', message: 'x' }], [504, null], [500, '<html>'], [599, { code: 'NEW_CODE', message: 'x' }]] as const) {
      const o = classify('inquire', { transport: 'answered', httpStatus: status, body });
      expect(afterInquiry(o, ctx()), `${status}`).toMatchObject({ do: 'inquire', answered: false });
    }
  });
});

describe('after a cancel', () => {
  it('ends CANCELED, DECLINED or FAILED as the PG holds it', () => {
    expect(afterCancel({ kind: 'canceled' }, ctx())).toMatchObject({ do: 'finalize', status: 'CANCELED' });
    expect(afterCancel({ kind: 'declined', code: 'REJECT_CARD_COMPANY', message: '' }, ctx())).toMatchObject({ status: 'DECLINED' });
    expect(afterCancel({ kind: 'nothing_at_pg' }, ctx())).toMatchObject({ status: 'FAILED', failure: { code: 'NOT_PROCESSED_BY_PG' } });
  });
  it('does not trust "nothing to cancel" while a confirm that got no answer may still charge', () => {
    const horizon = DEFAULT_RESOLUTION_POLICY.lateConfirmHorizonMs;
    // 10 min after intake: cancel again (same key) within the time left, never past it.
    const early = afterCancel({ kind: 'nothing_at_pg' }, ctx({ unreadConfirm: true, now: T0 + 10 * 60_000, retries: 20 }));
    expect(early).toEqual({ do: 'retry', delayMs: 22_500 });
    // Its first repeat raises one alert; the rest do not.
    expect(afterCancel({ kind: 'nothing_at_pg' }, ctx({ unreadConfirm: true, now: T0 + 60_000 }))).toMatchObject({ do: 'retry', alert: expect.stringContaining('may still reach the PG') });
    const late = afterCancel({ kind: 'nothing_at_pg' }, ctx({ unreadConfirm: true, now: T0 + horizon - 5_000, retries: 20 }));
    expect(late).toEqual({ do: 'retry', delayMs: 5_000 });
    // Once the PG refuses any confirm of it (its session expired), nothing can charge.
    expect(afterCancel({ kind: 'nothing_at_pg' }, ctx({ unreadConfirm: true, now: T0 + horizon }))).toMatchObject({ status: 'FAILED', failure: { code: 'NOT_PROCESSED_BY_PG' } });
  });
  it('repeats an unanswered cancel until it is answered', () => {
    for (const o of [{ kind: 'in_doubt', reason: 't', alert: false }, { kind: 'not_sent', reason: 'r', alert: false }] as PgOutcome[]) {
      expect(afterCancel(o, ctx())).toMatchObject({ do: 'retry' });
    }
    for (const [status, body] of [[500, { code: 'FAILED_INTERNAL_SYSTEM_PROCESSING' }], [504, '<html>'], [409, { code: 'IDEMPOTENT_REQUEST_PROCESSING' }]] as const) {
      expect(afterCancel(classify('cancel', { transport: 'answered', httpStatus: status, body }), ctx()), `${status}`).toMatchObject({ do: 'retry' });
    }
  });
  it('asks the PG instead of repeating a cancel whose answer it does not understand (a repeat would get it replayed)', () => {
    for (const [status, body] of [
      [200, { paymentKey: 'pk', status: 'READY' }],
      [200, 'not json'],
      [400, { code: 'INVALID_REQUEST', message: '' }],
      [403, { code: 'SOMETHING_NEW', message: '' }],
      [200, { paymentKey: 'pk', status: 'IN_PROGRESS' }],
    ] as const) {
      const step = afterCancel(classify('cancel', { transport: 'answered', httpStatus: status, body }), ctx());
      expect(step, `${status} ${JSON.stringify(body)}`).toMatchObject({ do: 'inquire', answered: false, alert: expect.stringContaining('cancel answered') });
    }
    // Each decision to cancel waits longer before the next inquiry → cancel cycle, up to the cap.
    const waits = [1, 2, 3, 4, 5, 9].map((cancels) => (afterCancel({ kind: 'failed', code: 'INVALID_REQUEST', message: '', ourBug: true }, ctx({ cancels, random: () => 1 })) as { delayMs: number }).delayMs);
    expect(waits).toEqual([2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });
});

describe('backoff', () => {
  it('grows 1 s, 2 s, 4 s with equal jitter and caps', () => {
    expect([0, 1, 2].map((n) => backoffMs(n, 1_000, 30_000, () => 0))).toEqual([500, 1_000, 2_000]);
    expect([0, 1, 2].map((n) => backoffMs(n, 1_000, 30_000, () => 1))).toEqual([1_000, 2_000, 4_000]);
    expect(backoffMs(20, 1_000, 30_000, () => 1)).toBe(30_000);
  });
});
