/** A counting semaphore with a bounded wait: the per-process share of the PG's connections. */
export class Semaphore {
  private free: number;
  private readonly waiters: { resolve: (ok: boolean) => void; timer: NodeJS.Timeout }[] = [];

  constructor(readonly size: number) {
    this.free = size;
  }

  /** Resolves true with a unit held, or false after `timeoutMs` without one. */
  acquire(timeoutMs: number): Promise<boolean> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const w = {
        resolve,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          resolve(false);
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  release(): void {
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(true);
    } else this.free++;
  }

  inUse(): number {
    return this.size - this.free;
  }
}
