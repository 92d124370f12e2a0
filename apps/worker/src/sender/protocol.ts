/** Messages between the worker's main thread and its sender thread. All plain data. */
import type { CallReport, CancelBody } from '@sluice/pg-client';
import type { PortCallOptions, PortResult, SenderStats, TransactionsQuery } from './pg-port.ts';

/** A message from the worker's main thread to its sender thread. */
export type ToSender =
  | { type: 'confirm'; id: number; payment: { paymentKey: string; orderId: string; amount: number }; options: PortCallOptions }
  | { type: 'inquire'; id: number; paymentKey: string; options: PortCallOptions }
  | { type: 'cancel'; id: number; paymentKey: string; body: CancelBody; options: PortCallOptions }
  | { type: 'transactions'; id: number; query: TransactionsQuery; options: PortCallOptions }
  | { type: 'close' };

/** A message from the sender thread to the worker's main thread. */
export type FromSender =
  | { type: 'ready' }
  | { type: 'reply'; id: number; result: PortResult; reports: CallReport[] }
  | { type: 'failed'; id: number; message: string }
  /** For the main thread's metrics: the reports of PG calls that no reply carried (replies carry the rest). */
  | { type: 'called'; reports: CallReport[] }
  | { type: 'stats'; stats: SenderStats }
  | { type: 'closed' };
