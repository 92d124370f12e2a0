/** Messages between the worker's main thread and its sender thread. All plain data. */
import type { CallReport } from '@sluice/pg-client';
import type { PortCallOptions, PortResult, SenderStats, TransactionsQuery } from './pg-port.ts';

/** A message from the worker's main thread to its sender thread. */
export type ToSender =
  | { type: 'confirm'; id: number; p: { paymentKey: string; orderId: string; amount: number }; o: PortCallOptions }
  | { type: 'inquire'; id: number; paymentKey: string; o: PortCallOptions }
  | { type: 'cancel'; id: number; paymentKey: string; cancelReason: string; o: PortCallOptions }
  | { type: 'transactions'; id: number; q: TransactionsQuery; o: PortCallOptions }
  | { type: 'close' };

/** A message from the sender thread to the worker's main thread. */
export type FromSender =
  | { type: 'ready' }
  | { type: 'reply'; id: number; result: PortResult }
  | { type: 'failed'; id: number; message: string }
  /** For the main thread's metrics: one per PG call. */
  | { type: 'called'; report: CallReport }
  | { type: 'stats'; stats: SenderStats }
  | { type: 'closed' };
