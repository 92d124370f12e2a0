/**
 * The payment resource as merchants see it. One function renders it for the 202 of a POST, for
 * the body stored with the idempotency key, and for GETs, so the three can never drift apart.
 * Internal fields (phase, PG call counters, inquiry counters, merchant id, request id) stay out.
 */
import { DEFAULT_PROVIDER } from '@sluice/config';
import type { PaymentStatus, Refund } from '@sluice/domain';
import { etaMs, type NewPayment, type PaymentRecord, type PaymentView, type PgRate } from '@sluice/store';

/** The merchant-facing payment. Times are ISO 8601 (UTC). */
export interface PaymentResource {
  id: string;
  paymentKey: string;
  orderId: string;
  amount: number;
  currency: string;
  /** The PG (provider id) it goes to. */
  provider: string;
  metadata: Record<string, string> | null;
  status: PaymentStatus;
  /** Confirms sent to the PG so far. */
  attempts: number;
  createdAt: string;
  updatedAt: string;
  finalizedAt: string | null;
  transactionKey: string | null;
  approvedAt: string | null;
  failure: { code: string; message: string } | null;
  /**
   * What is still charged to the card: the amount less every cancel done, while APPROVED; 0 in
   * every other status (the PG's `balanceAmount`).
   */
  balanceAmount: number;
  /** The merchant's cancels of this payment, oldest first (`POST /v1/payments/{id}/cancel`). */
  cancels: CancelResource[];
  /**
   * While QUEUED: when the payment should reach the PG, estimated from its place in the backlog
   * at the PG's rate. Null in every other status. Last, so that the intake can leave a hole for
   * it at the end of the 202 body (see {@link bodyTemplate}).
   */
  eta: string | null;
}

/** A merchant's cancel as shown on its payment. */
export interface CancelResource {
  id: string;
  amount: number;
  reason: string;
  status: Refund['status'];
  failure: { code: string; message: string } | null;
  createdAt: string;
  completedAt: string | null;
}

const iso = (ms: number): string => new Date(ms).toISOString();

const renderCancel = (c: Refund): CancelResource => ({
  id: c.id,
  amount: c.amount,
  reason: c.reason,
  status: c.status,
  failure: c.failure ?? null,
  createdAt: iso(c.createdAt),
  completedAt: c.completedAt ? iso(c.completedAt) : null,
});

/** Renders a stored payment. Key order is fixed here, which the stored 202 body relies on. */
export function renderPayment(r: PaymentRecord, eta: string | null): PaymentResource {
  return {
    id: r.id,
    paymentKey: r.paymentKey,
    orderId: r.orderId,
    amount: r.amount,
    currency: r.currency,
    provider: r.provider ?? DEFAULT_PROVIDER,
    metadata: r.metadata,
    status: r.status,
    attempts: r.attempts,
    createdAt: iso(r.createdAt),
    updatedAt: iso(r.updatedAt),
    finalizedAt: r.finalizedAt === null ? null : iso(r.finalizedAt),
    transactionKey: r.transactionKey,
    approvedAt: r.approvedAt,
    failure: r.failure,
    balanceAmount: r.status === 'APPROVED' ? r.amount - r.canceledAmount : 0,
    cancels: r.refunds.map(renderCancel),
    eta,
  };
}

/** The `eta` of a payment read with its send slots: null unless it is QUEUED and placed. */
export function etaOf(v: PaymentView, nowMs: number, rate: PgRate): string | null {
  return v.record.status === 'QUEUED' && v.slots !== null ? iso(etaMs(v.slots, nowMs, rate)) : null;
}

/** A read payment as merchants see it. */
export const renderView = (v: PaymentView, nowMs: number, rate: PgRate): PaymentResource =>
  renderPayment(v.record, etaOf(v, nowMs, rate));

const str = JSON.stringify;

/**
 * The 202 body of a new payment, with the hole for its `eta` that the intake script fills (it
 * counts the backlog anyway). `eta` is the last key, so the hole is the end of the JSON.
 *
 * Written out rather than `JSON.stringify(renderPayment(newRecord(p)))`, which built two objects
 * and formatted the time twice per intake. It must produce exactly those bytes (they are stored
 * for replays and compared with reads): helpers.test.ts checks the two on generated payments.
 */
export function bodyTemplate(p: Omit<NewPayment, 'provider'> & { provider: string | null }, rate: PgRate): { head: string; tail: string; rate: PgRate } {
  const at = iso(p.createdAt);
  // A payment accepted before there were several PGs has no provider: its first 202 had none.
  const provider = p.provider === null ? '' : `"provider":${str(p.provider)},`;
  const head =
    `{"id":${str(p.id)},"paymentKey":${str(p.paymentKey)},"orderId":${str(p.orderId)},"amount":${str(p.amount)},` +
    `"currency":${str(p.currency)},${provider}"metadata":${str(p.metadata)},"status":"QUEUED","attempts":0,"createdAt":"${at}",` +
    `"updatedAt":"${at}","finalizedAt":null,"transactionKey":null,"approvedAt":null,"failure":null,"balanceAmount":0,"cancels":[],"eta":"`;
  return { head, tail: '"}', rate };
}

/**
 * The 202 body a payment was accepted with, rendered again from its record (only the fields that
 * never change are read) and the eta the intake gave it: the bytes first sent, for a replay.
 */
export function intakeBody(r: PaymentRecord, eta: string, rate: PgRate): string {
  const t = bodyTemplate(r, rate);
  return t.head + eta + t.tail;
}

/**
 * The record a new payment will have once the intake script wrote it: rendered, it is what
 * {@link bodyTemplate} must produce (the tests hold the two together).
 */
export function newRecord(p: NewPayment): PaymentRecord {
  // Fields are listed rather than spread: a spread measured ~10× slower.
  return {
    id: p.id,
    merchantId: p.merchantId,
    paymentKey: p.paymentKey,
    orderId: p.orderId,
    amount: p.amount,
    currency: p.currency,
    provider: p.provider,
    metadata: p.metadata,
    requestId: p.requestId,
    createdAt: p.createdAt,
    status: 'QUEUED',
    phase: 'queued',
    updatedAt: p.createdAt,
    finalizedAt: null,
    attempts: 0,
    pgCalls: 0,
    answeredInquiries: 0,
    reconfirms: 0,
    transactionKey: null,
    approvedAt: null,
    failure: null,
    inDoubtAt: null,
    confirmsSettled: 0,
    cancels: 0,
    confirmSentAt: null,
    // Given by the intake script; not part of any answer.
    fqSeq: null,
    refunds: [],
    canceledAmount: 0,
    reservedAmount: 0,
  };
}
