/**
 * Which changes of a payment are events a merchant hears of (signed webhooks, `GET /v1/events`),
 * and what each carries. The one place: the worker's dispatcher (deliveries) and the drainer (the
 * books' events table) both read the books stream, whose entries the Lua scripts write in the
 * same atomic step as the change, and ask this function.
 *
 * An event's id is `evt_<payment id>_<version>`: the same change always makes the same event, so
 * a change read twice (a redelivered stream entry) is the same event, delivered with the same
 * `webhook-id` (receivers deduplicate on it). Its `seq` is the payment's version: events of one
 * payment are ordered by it, whatever order they arrive in.
 */
import { parseRefunds } from './refunds.ts';
import type { PaymentChange } from './book-changes.ts';

/** The event types a merchant endpoint may subscribe to. */
export const WEBHOOK_EVENT_TYPES = [
  'payment.approved',
  'payment.declined',
  'payment.failed',
  'payment.canceled',
  'payment.partially_canceled',
  'refund.failed',
] as const;
/** An event type. */
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** What an event says: the payment as it stands after the change, and the cancel it is about. */
export interface WebhookEventData {
  paymentId: string;
  orderId: string;
  status: string;
  amount: number;
  balanceAmount: number;
  provider: string | null;
  /** The payment's sequence number (its version): order a payment's events by it. */
  seq: number;
  failure: { code: string; message: string } | null;
  cancel: { id: string; amount: number; status: string; failure: { code: string; message: string } | null } | null;
}

/** One event. */
export interface WebhookEvent {
  id: string;
  type: WebhookEventType;
  merchantId: string;
  createdAt: number;
  data: WebhookEventData;
}

const FINAL_TYPES: Record<string, WebhookEventType> = {
  APPROVED: 'payment.approved',
  DECLINED: 'payment.declined',
  FAILED: 'payment.failed',
  CANCELED: 'payment.canceled',
};

/** The event a change makes, or null when merchants do not hear of it. */
export function webhookEventOf(c: PaymentChange): WebhookEvent | null {
  const s = c.snapshot;
  const e = c.event;
  const status = s.status ?? '';
  let type: WebhookEventType | null = null;
  const cancelId = typeof e.cancelId === 'string' ? e.cancelId : null;
  if (e.event === 'refunds_failed') type = 'refund.failed';
  else if (cancelId && (e.step === 'succeed' || e.repair === 'cancel found at the PG')) type = status === 'CANCELED' ? 'payment.canceled' : 'payment.partially_canceled';
  else if (cancelId && e.step === 'fail') type = 'refund.failed';
  else if (s.phase === 'final' && e.from !== 'final' && e.from !== undefined) type = FINAL_TYPES[status] ?? null;
  else if (s.phase === 'final' && typeof e.repair === 'string') type = FINAL_TYPES[status] ?? null;
  if (!type) return null;
  const refunds = parseRefunds(s.refunds);
  const cancel = cancelId ? refunds.find((r) => r.id === cancelId) : undefined;
  const amount = Number(s.amount ?? 0);
  return {
    id: `evt_${c.id}_${c.version}`,
    type,
    merchantId: s.merchantId ?? '',
    createdAt: e.at,
    data: {
      paymentId: c.id,
      orderId: s.orderId ?? '',
      status,
      amount,
      balanceAmount: status === 'APPROVED' ? amount - Number(s.canceledAmount ?? 0) : 0,
      provider: s.provider || null,
      seq: c.version,
      failure: s.failureCode ? { code: s.failureCode, message: s.failureMessage ?? '' } : null,
      cancel: cancel ? { id: cancel.id, amount: cancel.amount, status: cancel.status, failure: cancel.failure ?? null } : null,
    },
  };
}

/** The JSON body of a delivery (Standard Webhooks: `type`, `timestamp`, `data`), with the event's id. */
export function webhookBody(ev: WebhookEvent): string {
  return JSON.stringify({ id: ev.id, type: ev.type, timestamp: new Date(ev.createdAt).toISOString(), data: ev.data });
}
