import { describe, expect, it } from 'vitest';
import type { PaymentChange } from './book-changes.ts';
import { webhookBody, webhookEventOf } from './webhook-events.ts';

const change = (snapshot: Record<string, string>, event: Record<string, unknown>, version = 5): PaymentChange => ({
  kind: 'payment', entryId: '1-0', id: 'pay_x', version, intakeBody: null,
  snapshot: { id: 'pay_x', merchantId: 'm1', orderId: 'o1', amount: '10000', provider: 'default', ...snapshot },
  event: { at: 1_700_000_000_000, ...event },
});
const refunds = JSON.stringify([{ id: 'cnl_1', kind: 'refund', amount: 3000, reason: 'r', status: 'SUCCEEDED', failure: null, createdAt: 1, completedAt: 2, pgTransactionKey: 'tx' }]);

describe('which changes are events', () => {
  it('a move into a final state is payment.<status>, with the payment\'s sequence number', () => {
    for (const [status, type] of [['APPROVED', 'payment.approved'], ['DECLINED', 'payment.declined'], ['FAILED', 'payment.failed'], ['CANCELED', 'payment.canceled']]) {
      const ev = webhookEventOf(change({ phase: 'final', status: status! }, { from: 'confirming' }))!;
      expect([ev.type, ev.id, ev.data.seq, ev.merchantId]).toEqual([type, 'evt_pay_x_5', 5, 'm1']);
    }
    expect(webhookEventOf(change({ phase: 'final', status: 'APPROVED' }, { from: 'confirming' }))!.data.balanceAmount).toBe(10_000);
  });

  it('a refund done is payment.partially_canceled, or payment.canceled at 0; one not done is refund.failed; each with its cancel', () => {
    const part = webhookEventOf(change({ phase: 'final', status: 'APPROVED', canceledAmount: '3000', refunds }, { cancelId: 'cnl_1', step: 'succeed' }))!;
    expect([part.type, part.data.balanceAmount, part.data.cancel]).toEqual(['payment.partially_canceled', 7_000, { id: 'cnl_1', amount: 3_000, status: 'SUCCEEDED', failure: null }]);
    expect(webhookEventOf(change({ phase: 'final', status: 'CANCELED', refunds }, { cancelId: 'cnl_1', step: 'succeed' }))!.type).toBe('payment.canceled');
    expect(webhookEventOf(change({ phase: 'final', status: 'APPROVED', refunds }, { cancelId: 'cnl_1', step: 'fail' }))!.type).toBe('refund.failed');
    expect(webhookEventOf(change({ phase: 'final', status: 'APPROVED', refunds }, { cancelId: 'cnl_1', repair: 'cancel found at the PG' }))!.type).toBe('payment.partially_canceled');
  });

  it('everything else is no event: intake, a confirm sent, a cancel asked for, a cancel in doubt, a payment being voided', () => {
    for (const [snapshot, event] of [
      [{ phase: 'queued', status: 'QUEUED' }, { cause: 'intake' }],
      [{ phase: 'confirming', status: 'PROCESSING' }, { from: 'queued', cause: 'confirm' }],
      [{ phase: 'final', status: 'APPROVED' }, { event: 'cancel_requested', cancelId: 'cnl_1', from: 'final' }],
      [{ phase: 'final', status: 'APPROVED' }, { cancelId: 'cnl_1', step: 'check' }],
      [{ phase: 'canceling', status: 'PROCESSING' }, { event: 'cancel_requested', cancelId: 'cnl_1', from: 'confirming' }],
    ] as const) {
      expect(webhookEventOf(change(snapshot, event)), JSON.stringify(event)).toBeNull();
    }
  });

  it('the body is the Standard Webhooks shape with the event id', () => {
    const ev = webhookEventOf(change({ phase: 'final', status: 'APPROVED' }, { from: 'inquiring' }))!;
    expect(JSON.parse(webhookBody(ev))).toEqual({ id: 'evt_pay_x_5', type: 'payment.approved', timestamp: '2023-11-14T22:13:20.000Z', data: ev.data });
  });
});
