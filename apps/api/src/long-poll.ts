/**
 * Long polls of `GET /v1/payments/:id?wait=N`: requests that wait for a payment to become final.
 *
 * The worker's apply-step script PUBLISHes a payment's id on `${prefix}:final` in the same
 * atomic step that makes it final (and when reconciliation repairs it). One subscriber
 * connection per API process listens, created on the first wait, and wakes the waiters of that
 * id from a Map; a waiter then re-reads the payment. A message is a hint, never the state: the
 * answer always comes from a read, so a message lost while the subscriber reconnects only costs
 * that request its full wait, never a wrong answer.
 */
import type { Redis } from 'ioredis';
import { SluiceError } from '@sluice/domain';

/** The longest `wait` a request may ask for, in seconds: below common proxy idle timeouts (60 s). */
export const MAX_WAIT_SECONDS = 30;

/**
 * Waiting requests per process. Each holds a socket and a timer; past this many the process
 * answers 503 rather than grow without bound (a client can always poll without `wait`).
 */
export const MAX_WAITERS = 10_000;

/** How a wait ended. `closed`: the process is shutting down. `canceled`: the client went away. */
export type WaitOutcome = 'final' | 'timeout' | 'closed' | 'canceled';

/** One waiting request. */
export interface FinalWait {
  /**
   * Resolves once Redis confirmed the subscription, or once the wait settled, whichever is
   * first. Never rejects. A read after this sees every change the waiter would not be told of.
   */
  subscribed: Promise<void>;
  /** Resolves when the payment's message came, the time ran out, the hub closed, or on cancel. */
  settled: Promise<WaitOutcome>;
  /** Stops waiting and frees the slot; harmless to call more than once. */
  cancel(): void;
}

interface Waiter {
  settle(o: WaitOutcome): void;
}

/** The process's waiters and its one subscriber connection. */
export class FinalWaiters {
  private readonly byId = new Map<string, Set<Waiter>>();
  private count = 0;
  private sub: Redis | null = null;
  private ready: Promise<void> | null = null;
  private closed = false;

  /**
   * @param connect opens the subscriber connection (a subscribed connection can run nothing else)
   * @param channel the channel apply-step publishes final payment ids on (`keys.finalChannel`)
   * @param maxWaiters requests allowed to wait at once in this process
   */
  constructor(
    private readonly connect: () => Redis,
    readonly channel: string,
    readonly maxWaiters = MAX_WAITERS,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Requests waiting now. */
  get size(): number {
    return this.count;
  }

  /** Whether the subscriber connection was opened (it is, from the first wait on). */
  get subscriberOpen(): boolean {
    return this.sub !== null;
  }

  /**
   * Starts waiting for payment `id` to be published as final, for at most `timeoutMs`.
   * Throws 503 TOO_MANY_WAITERS past {@link maxWaiters}.
   */
  wait(id: string, timeoutMs: number): FinalWait {
    if (this.closed) {
      const settled = Promise.resolve<WaitOutcome>('closed');
      return { subscribed: Promise.resolve(), settled, cancel: () => {} };
    }
    if (this.count >= this.maxWaiters) {
      throw new SluiceError('TOO_MANY_WAITERS', 'Too many requests are waiting; retry, or poll without wait', 503, true);
    }
    let resolve!: (o: WaitOutcome) => void;
    const settled = new Promise<WaitOutcome>((r) => (resolve = r));
    let done = false;
    const waiter: Waiter = {
      settle: (o) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const set = this.byId.get(id);
        set?.delete(waiter);
        if (set?.size === 0) this.byId.delete(id);
        this.count -= 1;
        resolve(o);
      },
    };
    const timer = setTimeout(() => waiter.settle('timeout'), timeoutMs);
    let set = this.byId.get(id);
    if (!set) this.byId.set(id, (set = new Set()));
    set.add(waiter);
    this.count += 1;
    const subscribed = Promise.race([this.subscribe(), settled.then(() => undefined)]);
    return { subscribed, settled, cancel: () => waiter.settle('canceled') };
  }

  /** The subscription, opened once; a failed one is forgotten so that the next wait retries it. */
  private subscribe(): Promise<void> {
    if (this.ready) return this.ready;
    const sub = this.sub ?? this.connect();
    if (!this.sub) {
      this.sub = sub;
      // Without a listener ioredis prints every reconnect error; waits fall back to their timeout.
      sub.on('error', (err) => this.onError(err));
      sub.on('message', (_channel: string, id: string) => this.wake(id));
    }
    const ready = sub.subscribe(this.channel).then(
      () => undefined,
      (err: unknown) => {
        this.onError(err);
        if (this.ready === ready) this.ready = null;
      },
    );
    this.ready = ready;
    return ready;
  }

  private wake(id: string): void {
    const set = this.byId.get(id);
    if (!set) return;
    for (const w of [...set]) w.settle('final');
  }

  /**
   * For shutdown: every waiter is answered now (with the payment's state as it is), no new wait
   * starts, and the subscriber connection is closed.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const set of [...this.byId.values()]) for (const w of [...set]) w.settle('closed');
    const sub = this.sub;
    this.sub = null;
    this.ready = null;
    if (sub) await sub.quit().catch(() => sub.disconnect());
  }
}
