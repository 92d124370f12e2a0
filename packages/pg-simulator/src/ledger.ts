/**
 * The PG's book: payment records, the orderId index and the transaction rows. `chargeCount` is the
 * simulator's truth about money moved; it only ever increments inside {@link Ledger.commitApproval},
 * which accepts IN_PROGRESS records only and leaves them DONE, so no path can charge twice.
 */
import { formatKst, nowMs } from './clock.ts';

/** The statuses the contract defines for a Payment. */
export type PaymentStatus = 'IN_PROGRESS' | 'DONE' | 'PARTIAL_CANCELED' | 'CANCELED' | 'ABORTED';

/** One entry of a Payment's `cancels`. */
export interface CancelEntry {
  cancelAmount: number;
  cancelReason: string;
  canceledAt: string;
  transactionKey: string;
}

/** A payment the PG holds a confirm for. */
export interface PaymentRecord {
  paymentKey: string;
  orderId: string;
  amount: number;
  status: PaymentStatus;
  approvedAt: string | null;
  transactionKey: string | null;
  cancels: CancelEntry[];
  failure: { code: string; message: string } | null;
  /** Times the card was charged: 0 or 1, never more. */
  chargeCount: number;
  /** True once a cancel returned money of an approved payment (in part or whole). */
  refunded: boolean;
  /** Money returned to the card by cancels of the approved payment, in total. */
  refundedAmount: number;
  canceledAt: string | null;
  /** The Idempotency-Key the confirm came under, to tell a same-key repeat from another key. */
  confirmKey: string | null;
}

/** A row of `GET /v1/transactions`. */
export interface TransactionRow {
  transactionKey: string;
  paymentKey: string;
  orderId: string;
  status: 'DONE' | 'PARTIAL_CANCELED' | 'CANCELED';
  /** The approval's amount, or the amount a cancel returned. */
  amount: number;
  transactionAt: string;
  /** Commit time in ms, for range search; not part of the JSON row. */
  atMs: number;
}

/** Records, orderId index and transaction rows of one simulated PG account. */
export class Ledger {
  readonly payments = new Map<string, PaymentRecord>();
  private readonly byOrder = new Map<string, PaymentRecord>();
  /** Confirms received per paymentKey (also for keys that never got a record). */
  readonly confirmArrivals = new Map<string, number>();
  /** The distinct Idempotency-Keys those confirms carried, per paymentKey (none: the empty string). */
  readonly confirmKeys = new Map<string, Set<string>>();
  /** When the first confirm of each paymentKey arrived (ms epoch). */
  readonly firstConfirmAt = new Map<string, number>();
  /** Append-only and sorted by (atMs, transactionKey): commit times come from a monotonic clock. */
  readonly transactions: TransactionRow[] = [];
  private transactionSeq = 0;

  /** The record for a paymentKey, if the PG holds a confirm for it. */
  byPaymentKey(paymentKey: string): PaymentRecord | undefined {
    return this.payments.get(paymentKey);
  }

  /** The record that owns an orderId, if any. */
  byOrderId(orderId: string): PaymentRecord | undefined {
    return this.byOrder.get(orderId);
  }

  /** Counts one confirm received for a paymentKey, and the Idempotency-Key it came under. */
  noteConfirmArrival(paymentKey: string, idempotencyKey = '', atMs = nowMs()): void {
    const seen = this.confirmArrivals.get(paymentKey) ?? 0;
    if (seen === 0) this.firstConfirmAt.set(paymentKey, atMs);
    this.confirmArrivals.set(paymentKey, seen + 1);
    let keys = this.confirmKeys.get(paymentKey);
    if (keys === undefined) this.confirmKeys.set(paymentKey, (keys = new Set()));
    keys.add(idempotencyKey);
  }

  /** Opens an IN_PROGRESS record: the approval is now under way. */
  open(paymentKey: string, orderId: string, amount: number, confirmKey: string | null): PaymentRecord {
    const record: PaymentRecord = {
      paymentKey,
      orderId,
      amount,
      status: 'IN_PROGRESS',
      approvedAt: null,
      transactionKey: null,
      cancels: [],
      failure: null,
      chargeCount: 0,
      refunded: false,
      refundedAmount: 0,
      canceledAt: null,
      confirmKey,
    };
    this.payments.set(paymentKey, record);
    this.byOrder.set(orderId, record);
    return record;
  }

  /** Removes a record that never committed ("no record"), freeing its orderId. */
  forget(record: PaymentRecord): void {
    if (this.payments.get(record.paymentKey) === record) this.payments.delete(record.paymentKey);
    if (this.byOrder.get(record.orderId) === record) this.byOrder.delete(record.orderId);
  }

  /** Charges the card once. Returns false (and charges nothing) unless the record is IN_PROGRESS. */
  commitApproval(record: PaymentRecord, atMs: number): boolean {
    if (record.status !== 'IN_PROGRESS') return false;
    const row = this.addRow(record, 'DONE', atMs);
    record.status = 'DONE';
    record.chargeCount += 1;
    record.approvedAt = row.transactionAt;
    record.transactionKey = row.transactionKey;
    return true;
  }

  /** A final decline: the payment becomes ABORTED with its failure, and leaves no row. */
  abort(record: PaymentRecord, code: string, message: string): void {
    if (record.status !== 'IN_PROGRESS') return;
    record.status = 'ABORTED';
    record.failure = { code, message };
  }

  /**
   * A cancel that the caller has checked against the contract. An approved payment (DONE or
   * PARTIAL_CANCELED) returns `amount` of its balance and writes a row: CANCELED when the balance
   * reaches 0, PARTIAL_CANCELED before. IN_PROGRESS (full cancels only) voids the approval under
   * way: no money moved, so no row. Other statuses are left as they are.
   */
  cancel(record: PaymentRecord, reason: string, amount: number, atMs: number): void {
    const approved = record.status === 'DONE' || record.status === 'PARTIAL_CANCELED';
    if (!approved && record.status !== 'IN_PROGRESS') return;
    const canceledAt = formatKst(atMs);
    const rest = approved ? balanceOf(record) - amount : 0;
    const status = rest > 0 ? 'PARTIAL_CANCELED' : 'CANCELED';
    const transactionKey = approved ? this.addRow(record, status, atMs, amount).transactionKey : this.nextTransactionKey();
    record.cancels.push({ cancelAmount: amount, cancelReason: reason, canceledAt, transactionKey });
    record.status = status;
    if (status === 'CANCELED') record.canceledAt = canceledAt;
    if (approved) {
      record.refunded = true;
      record.refundedAmount += amount;
    }
  }

  /** Forgets everything (used by `/__sim/reset`). */
  clear(): void {
    this.payments.clear();
    this.byOrder.clear();
    this.confirmArrivals.clear();
    this.confirmKeys.clear();
    this.firstConfirmAt.clear();
    this.transactions.length = 0;
    this.transactionSeq = 0;
  }

  /** Zero-padded sequence keys sort like the rows they name, which `startingAfter` relies on. */
  private nextTransactionKey(): string {
    this.transactionSeq += 1;
    return `txsim${String(this.transactionSeq).padStart(12, '0')}`;
  }

  private addRow(record: PaymentRecord, status: TransactionRow['status'], atMs: number, amount = record.amount): TransactionRow {
    const row: TransactionRow = {
      transactionKey: this.nextTransactionKey(),
      paymentKey: record.paymentKey,
      orderId: record.orderId,
      status,
      amount,
      transactionAt: formatKst(atMs),
      atMs: Math.floor(atMs),
    };
    this.transactions.push(row);
    return row;
  }
}

/**
 * What is still charged: the total less every cancel while the payment is approved (DONE or
 * PARTIAL_CANCELED), else 0.
 */
export function balanceOf(record: PaymentRecord): number {
  if (record.status !== 'DONE' && record.status !== 'PARTIAL_CANCELED') return 0;
  return record.amount - record.cancels.reduce((sum, c) => sum + c.cancelAmount, 0);
}

/** The Payment JSON of the contract; `statusOverride` exists for the `unknown_status` scenario. */
export function paymentJson(record: PaymentRecord, statusOverride?: string): string {
  return JSON.stringify({
    paymentKey: record.paymentKey,
    orderId: record.orderId,
    status: statusOverride ?? record.status,
    totalAmount: record.amount,
    balanceAmount: balanceOf(record),
    approvedAt: record.approvedAt,
    transactionKey: record.transactionKey,
    cancels: record.cancels,
    failure: record.failure,
  });
}
