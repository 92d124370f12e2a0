/**
 * This process's share of the PG's connection cap: `size` units, each one connection (one undici
 * Client, see connections.ts), handed out with a bounded wait and a reserve: confirms and listings
 * may hold at most `size − reserved` units, inquiries and cancels all of them. So however many
 * confirms hang, the calls that resolve payments in doubt always find a connection; and those
 * wait ahead of confirms when a unit frees up. Free units are handed out last-freed first, so the
 * connections just used (still open) carry the next requests and the others go idle and close.
 */

/** `general`: confirms and listings. `resolution`: inquiries and cancels (may use the reserve). */
export type Lane = 'general' | 'resolution';

interface Waiter {
  resolve: (unit: number) => void;
  timer: NodeJS.Timeout;
}

/**
 * The share is short of connections when this many of the units confirms may use carry a
 * request that waits for its answer. Units held by calls waiting for a send slot do not count:
 * under a healthy PG at the rate limit (500/s × ~0.25 s) about 125 of 176 carry one, and there
 * the gate binds, not the connections.
 */
const SHORT_SHARE = 0.85;

/** The units of this process's connection share, handed out with a bounded wait and a reserve. */
export class ConnectionShare {
  /** Free units, the last freed on top. */
  private readonly free: number[];
  /** Units whose request is written and waits for its answer. */
  private awaiting = 0;
  private readonly waiting: Record<Lane, Waiter[]> = { general: [], resolution: [] };

  constructor(
    readonly size: number,
    readonly reserved = 0,
  ) {
    if (reserved >= size && size > 0) throw new Error(`reserved connections (${reserved}) must be fewer than the share (${size})`);
    this.free = Array.from({ length: size }, (_, i) => size - 1 - i);
  }

  private limit(lane: Lane): number {
    return lane === 'resolution' ? this.size : this.size - this.reserved;
  }

  /** Resolves with the unit held, or −1 after `timeoutMs` without one. */
  acquire(lane: Lane, timeoutMs: number): Promise<number> {
    if (this.inUse() < this.limit(lane) && (lane === 'resolution' || this.waiting.resolution.length === 0)) {
      return Promise.resolve(this.free.pop()!);
    }
    return new Promise((resolve) => {
      const queue = this.waiting[lane];
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          const index = queue.indexOf(waiter);
          if (index >= 0) queue.splice(index, 1);
          resolve(-1);
        }, timeoutMs),
      };
      queue.push(waiter);
    });
  }

  /** Gives a unit back, to a waiting inquiry or cancel first. */
  release(unit: number): void {
    this.free.push(unit);
    for (const lane of ['resolution', 'general'] as const) {
      const queue = this.waiting[lane];
      while (queue.length > 0 && this.inUse() < this.limit(lane)) {
        const waiter = queue.shift()!;
        clearTimeout(waiter.timer);
        waiter.resolve(this.free.pop()!);
      }
    }
  }

  inUse(): number {
    return this.size - this.free.length;
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
