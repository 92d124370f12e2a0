/**
 * What the worker needs from the PG side: the four calls, each behind the payment's phase guard
 * (given as data, so that it can run wherever the send happens), plus the sender's figures.
 * Two implementations: `LocalPg` sends from this thread; `ThreadPg` hands every call to a sender
 * thread whose event loop does nothing but wait for slots and send on time.
 */
import type { PgCall } from '@sluice/domain';
import type { CallResult, CancelBody, ReadTimeoutView } from '@sluice/pg-client';
import type { GuardRequest, GuardResult, RefundGuardRequest } from '@sluice/store';

/**
 * The guard of one call, as data so that it can run wherever the send happens: a payment's phase
 * guard (the store's {@link GuardRequest}), or a merchant refund's (`RefundGuardRequest`: the
 * cancel itself, or a query of one in doubt).
 */
export type GuardSpec = Omit<GuardRequest, 'recheck'> | { refund: Omit<RefundGuardRequest, 'recheck'> };

/**
 * Why a call was not sent: the phase guard or the breaker said no, the payment expired or is
 * missing, or (`unreplicated`) a cancel's guard passed but no replica confirmed the state that
 * allows it within REDIS_WAIT_TIMEOUT_MS (`LocalPg`).
 */
export type Refusal = Exclude<GuardResult, { ok: true }> | { ok: false; reason: 'unreplicated' };

/** How long a step held back for want of a replica waits before it looks again (ms). */
export const UNREPLICATED_RETRY_MS = 1_000;

/** A PG call's Idempotency-Key, request id and phase guard. */
export interface PortCallOptions {
  idempotencyKey?: string;
  requestId?: string;
  guard?: GuardSpec;
}

/** A page of the PG's book: the window, and the key to go on after. */
export interface TransactionsQuery {
  startDate: string;
  endDate: string;
  startingAfter?: string;
  limit?: number;
}

/** The sender's own figures, for metrics and tests. */
export interface SenderStats {
  granted: number;
  tooLate: number;
  fetches: number;
  fetchErrors: number;
  rateLimited: number;
  /** The margin the gate kept at its last grant (ms); 0 without a gate. */
  marginMs: number;
  /** Connections of this process's share in use. */
  inFlight: number;
  /** Send slots taken and not used (too late at write, or refused by the guard after). */
  unusedSlots: number;
  /** The read timeout in force and the observed median, per call type. */
  readTimeouts: Record<PgCall, ReadTimeoutView>;
}

/** Stats before the sender's first report. */
export function emptyStats(): SenderStats {
  const none = { timeoutMs: 0, typicalMs: null, p75Ms: null };
  return {
    granted: 0, tooLate: 0, fetches: 0, fetchErrors: 0, rateLimited: 0, marginMs: 0, inFlight: 0, unusedSlots: 0,
    readTimeouts: { confirm: none, inquire: none, cancel: none, transactions: none },
  };
}

/** A PG call's result through the port: the outcome, or the guard's refusal. */
export type PortResult = CallResult<Refusal>;

/** The PG side as the worker sees it: the four calls behind the phase guard, and the sender's figures. */
export interface PgPort {
  confirm(payment: { paymentKey: string; orderId: string; amount: number }, options: PortCallOptions): Promise<PortResult>;
  inquire(paymentKey: string, options?: PortCallOptions): Promise<PortResult>;
  cancel(paymentKey: string, body: CancelBody, options: PortCallOptions): Promise<PortResult>;
  transactions(query: TransactionsQuery, options?: PortCallOptions): Promise<PortResult>;
  stats(): SenderStats;
  close(): Promise<void>;
}
