/**
 * The PG port backed by the sender thread: every call is posted to the thread and its result
 * posted back. A call the thread could not run (it crashed, or is closing) rejects, which the
 * BullMQ processor treats like any infrastructure error: the job is retried, and a confirm that
 * may have left is resolved by the same key or by inquiry.
 */
import { WORKER_YOUNG_GENERATION_MB, type Config } from '@sluice/config';
import type { CallObserver, CancelBody } from '@sluice/pg-client';
import { Worker } from 'node:worker_threads';
import { emptyStats, type PgPort, type PortCallOptions, type PortResult, type SenderStats, type TransactionsQuery } from './pg-port.ts';
import type { FromSender, ToSender } from './protocol.ts';

type Pending = { resolve: (r: PortResult) => void; reject: (e: Error) => void };

/** The PG port backed by the sender thread: each call posted to it, its result posted back. */
export class ThreadPg implements PgPort {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private last: SenderStats = emptyStats();
  private closed: Promise<void> | null = null;
  /** Why the thread is gone, once it has died without being asked to close. */
  private dead: Error | null = null;
  readonly ready: Promise<void>;

  /**
   * `onDeath` hears of a thread that died without being asked to close: this process can make no
   * PG call any more, and every call from now on rejects at once rather than waiting for ever.
   */
  constructor(config: Config, observer: CallObserver = {}, onDeath: (err: Error) => void = () => undefined) {
    // The boot file registers tsx itself: the thread runs TypeScript, also under vitest. Its
    // young generation is the worker's (WORKER_NODE_FLAGS), however the process was started.
    this.worker = new Worker(new URL('./sender-thread-boot.mjs', import.meta.url), {
      workerData: { config },
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    let readyResolve: () => void = () => undefined;
    let readyReject: (e: Error) => void = () => undefined;
    this.ready = new Promise((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    this.worker.on('message', (message: FromSender) => {
      switch (message.type) {
        case 'ready':
          readyResolve();
          break;
        case 'settled':
          // The reports of calls made so far (these among them) before their results.
          for (const report of message.reports) observer.onCall?.(report);
          for (const r of message.replies) {
            if ('result' in r) this.settle(r.id)?.resolve(r.result);
            else this.settle(r.id)?.reject(new Error(`sender thread: ${r.failed}`));
          }
          break;
        case 'stats':
          this.last = message.stats;
          break;
        case 'closed':
          break;
      }
    });
    const died = (err: Error) => {
      readyReject(err);
      this.failAll(err);
      if (this.closed || this.dead) return;
      this.dead = err;
      onDeath(err);
    };
    this.worker.on('error', died);
    this.worker.on('exit', (code) => died(new Error(`sender thread exited (${code})`)));
  }

  private settle(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    this.pending.delete(id);
    return pending;
  }

  private failAll(err: Error): void {
    for (const pending of this.pending.values()) pending.reject(err);
    this.pending.clear();
  }

  private call(message: Exclude<ToSender, { type: 'close' }>): Promise<PortResult> {
    if (this.closed) return Promise.reject(new Error('sender thread closed'));
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.pending.set(message.id, { resolve, reject });
      this.worker.postMessage(message);
    });
  }

  confirm(payment: { paymentKey: string; orderId: string; amount: number }, options: PortCallOptions): Promise<PortResult> {
    return this.call({ type: 'confirm', id: ++this.seq, payment, options });
  }
  inquire(paymentKey: string, options: PortCallOptions = {}): Promise<PortResult> {
    return this.call({ type: 'inquire', id: ++this.seq, paymentKey, options });
  }
  cancel(paymentKey: string, body: CancelBody, options: PortCallOptions): Promise<PortResult> {
    return this.call({ type: 'cancel', id: ++this.seq, paymentKey, body, options });
  }
  transactions(query: TransactionsQuery, options: PortCallOptions = {}): Promise<PortResult> {
    return this.call({ type: 'transactions', id: ++this.seq, query, options });
  }

  /** The thread's figures as of its last report (every 500 ms). */
  stats(): SenderStats {
    return this.last;
  }

  /** Lets calls in flight finish, then closes the gate, the pool and the thread's Redis. */
  close(): Promise<void> {
    if (this.dead) return Promise.resolve();
    this.closed ??= new Promise<void>((resolve) => {
      const done = () => {
        void this.worker.terminate().finally(resolve);
      };
      this.worker.on('message', (message: FromSender) => {
        if (message.type === 'closed') done();
      });
      this.worker.once('exit', () => resolve());
      const close: ToSender = { type: 'close' };
      this.worker.postMessage(close);
      setTimeout(done, 5_000).unref();
    });
    return this.closed;
  }
}
