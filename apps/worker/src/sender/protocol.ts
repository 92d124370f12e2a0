/** Messages between the worker's main thread and its sender thread. All plain data. */
import type { CallReport, CancelBody } from '@sluice/pg-client';
import type { PortCallOptions, PortResult, SenderStats, TransactionsQuery } from './pg-port.ts';

/** A call's end, as the sender thread posts it back: its result, or what failed. */
export type Settled = { id: number; result: PortResult } | { id: number; failed: string };

/**
 * How long the sender thread gathers ended calls before it posts them: a message costs the sender
 * a structured clone and a write, the main thread a wake-up and a read, and the main thread's
 * writes for several payments then share one round trip to Redis. Each payment's step waits this
 * much longer; the PG sees nothing of it.
 */
export const REPLY_BATCH_MS = 4;

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
  /**
   * The calls that ended in the last few milliseconds ({@link REPLY_BATCH_MS}): each its result,
   * or why the thread could not run it; and the reports of the PG calls made meanwhile, for the
   * main thread's metrics, heard before the results.
   */
  | { type: 'settled'; replies: Settled[]; reports: CallReport[] }
  | { type: 'stats'; stats: SenderStats }
  | { type: 'closed' };
