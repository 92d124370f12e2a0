/**
 * This process's share of the PG's connection cap, as a counting semaphore with a bounded wait
 * and a reserve: confirms and listings may hold at most `size − reserved` units, inquiries and
 * cancels all of them. So however many confirms hang, the calls that resolve payments in doubt
 * always find a connection; and those wait ahead of confirms when a unit frees up.
 */

/** `general`: confirms and listings. `resolution`: inquiries and cancels (may use the reserve). */
export type Lane = 'general' | 'resolution';

interface Waiter {
  resolve: (ok: boolean) => void;
  timer: NodeJS.Timeout;
}

/**
 * The share is short of connections when this many of the units confirms may use carry a
 * request that waits for its answer. Units held by calls waiting for a send slot do not count:
 * under a healthy PG at the rate limit (500/s × ~0.25 s) about 125 of 176 carry one, and there
 * the gate binds, not the connections.
 */
const SHORT_SHARE = 0.85;

export class ConnectionShare {
  private used = 0;
  /** Units whose request is written and waits for its answer. */
  private awaiting = 0;
  private readonly waiting: Record<Lane, Waiter[]> = { general: [], resolution: [] };

  constructor(
    readonly size: number,
    readonly reserved = 0,
  ) {
    if (reserved >= size && size > 0) throw new Error(`reserved connections (${reserved}) must be fewer than the share (${size})`);
  }

  private limit(lane: Lane): number {
    return lane === 'resolution' ? this.size : this.size - this.reserved;
  }

  /** Resolves true with a unit held, or false after `timeoutMs` without one. */
  acquire(lane: Lane, timeoutMs: number): Promise<boolean> {
    if (this.used < this.limit(lane) && (lane === 'resolution' || this.waiting.resolution.length === 0)) {
      this.used++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const queue = this.waiting[lane];
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          const i = queue.indexOf(waiter);
          if (i >= 0) queue.splice(i, 1);
          resolve(false);
        }, timeoutMs),
      };
      queue.push(waiter);
    });
  }

  /** Gives a unit back, to a waiting inquiry or cancel first. */
  release(): void {
    this.used--;
    for (const lane of ['resolution', 'general'] as const) {
      const queue = this.waiting[lane];
      while (queue.length > 0 && this.used < this.limit(lane)) {
        const waiter = queue.shift()!;
        clearTimeout(waiter.timer);
        this.used++;
        waiter.resolve(true);
      }
    }
  }

  inUse(): number {
    return this.used;
  }

  /** A held unit's request went onto the wire; `answered` when its answer came (or it was given up). */
  written(): void {
    this.awaiting++;
  }
  answered(): void {
    this.awaiting--;
  }

  /**
   * Whether the PG is holding the connections: so many requests wait for answers that confirms
   * will soon wait for a connection. Then a call waiting on a slow answer keeps another payment
   * from the PG, and the read timeout is cut to the PG's observed latency.
   */
  short(): boolean {
    return this.awaiting >= SHORT_SHARE * (this.size - this.reserved);
  }
}
