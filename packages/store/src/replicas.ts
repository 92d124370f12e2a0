/**
 * Writes on a replica before they are acknowledged (`REDIS_WAIT_REPLICAS`): replication is
 * asynchronous, so a write the primary answered may vanish in a failover unless a replica has it.
 *
 * `WAIT n timeout` blocks the connection it is sent on until n replicas acknowledged everything
 * that connection wrote. The writes here go over the shared, pipelined connection, so the WAIT goes
 * on a connection of its own, and one WAIT serves every write answered before it was sent: a
 * caller that arrives while one is in flight waits for the next. Redis takes a client's
 * replication offset from its last command, so each WAIT follows a PING (which sets it to the
 * primary's offset then, covering every write Redis had answered).
 *
 * A WAIT only speaks for the server it ran on. During a failover the writer and the waiter may sit
 * on different servers for a moment, so a write is confirmed only if the writer connection did not
 * reconnect between its mark (taken before the write) and the WAIT's answer, the waiter did not
 * reconnect during its WAIT, and both are on the same address. Anything else is "not confirmed":
 * the caller answers 503 and the merchant retries with the same key (the idempotent replay waits
 * again, on whatever server holds the payment then).
 */
import type { Redis } from './redis.ts';

/** Taken before a write: which connection epoch and server the write goes to. */
export interface WriteMark {
  epoch: number;
  addr: string | null;
}

interface Ack {
  replicas: number;
  addr: string | null;
}

interface Waiting {
  resolve: (ack: Ack) => void;
}

const addrOf = (r: Redis): string | null => (r.stream?.remoteAddress && r.status === 'ready' ? `${r.stream.remoteAddress}:${r.stream.remotePort}` : null);

/** Confirms writes on `replicas` replicas within `timeoutMs`, one WAIT per batch of writers. */
export class ReplicaWaiter {
  private conn: Redis | null = null;
  private connEpoch = 0;
  private writerEpoch = 0;
  private waiting: Waiting[] = [];
  private running = false;
  private closed = false;
  /** WAITs sent, writes confirmed and not confirmed (for metrics and tests). */
  readonly stats = { waits: 0, confirmed: 0, unconfirmed: 0 };

  constructor(
    private readonly writer: Redis,
    private readonly open: () => Redis,
    readonly replicas: number,
    readonly timeoutMs: number,
  ) {
    writer.on('ready', () => this.writerEpoch++);
    // Opened now, so that the first request's wait is the WAIT's, not a connect's.
    this.connection();
  }

  /** Call before the write. */
  mark(): WriteMark {
    return { epoch: this.writerEpoch, addr: addrOf(this.writer) };
  }

  /** After the write's answer: whether `replicas` replicas hold it (and everything before it). */
  async confirm(mark: WriteMark): Promise<boolean> {
    const ack = await new Promise<Ack>((resolve) => {
      this.waiting.push({ resolve });
      if (!this.running) void this.drain();
    });
    const ok = ack.replicas >= this.replicas && mark.addr !== null && ack.addr === mark.addr && this.writerEpoch === mark.epoch && addrOf(this.writer) === mark.addr;
    if (ok) this.stats.confirmed++;
    else this.stats.unconfirmed++;
    return ok;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.resolve({ replicas: 0, addr: null });
    this.conn?.disconnect();
    this.conn = null;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.length > 0) {
        // Only those who came before this WAIT's PING is sent: later ones wait for the next.
        const batch = this.waiting.splice(0);
        const ack = this.closed ? { replicas: 0, addr: null } : await this.waitOnce();
        for (const w of batch) w.resolve(ack);
      }
    } finally {
      this.running = false;
    }
  }

  private connection(): Redis {
    if (this.conn) return this.conn;
    const conn = this.open();
    conn.on('error', () => undefined);
    conn.on('ready', () => this.connEpoch++);
    this.conn = conn;
    return conn;
  }

  private async waitOnce(): Promise<Ack> {
    const conn = this.connection();
    let timer: NodeJS.Timeout | undefined;
    try {
      if (conn.status !== 'ready') {
        // A new connection (or one coming back): wait for it, as long as a WAIT may take.
        await new Promise<void>((r) => {
          const ready = () => r();
          timer = setTimeout(() => {
            conn.off('ready', ready);
            r();
          }, this.timeoutMs);
          conn.once('ready', ready);
        });
        clearTimeout(timer);
      }
      const epoch = this.connEpoch;
      const addr = addrOf(conn);
      this.stats.waits++;
      // Redis away: the pipeline would wait for it (no retry limit); give up a second past WAIT's own.
      const answered = await Promise.race([
        conn.pipeline().ping().call('WAIT', this.replicas, this.timeoutMs).exec(),
        new Promise<null>((r) => {
          timer = setTimeout(() => r(null), this.timeoutMs + 1_000);
        }),
      ]);
      if (answered === null) {
        // The connection's state is unknown: start again on a fresh one.
        conn.disconnect();
        this.conn = null;
        return { replicas: 0, addr: null };
      }
      const [, wait] = answered ?? [];
      const replicas = wait && !wait[0] ? Number(wait[1]) : 0;
      if (addr === null || this.connEpoch !== epoch || addrOf(conn) !== addr) return { replicas: 0, addr: null };
      return { replicas, addr };
    } catch {
      return { replicas: 0, addr: null };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The waiter REDIS_WAIT_REPLICAS asks for, on `writer`'s server, or null when it is 0. */
export function replicaWaiterOf(c: { REDIS_WAIT_REPLICAS: number; REDIS_WAIT_TIMEOUT_MS: number }, writer: Redis): ReplicaWaiter | null {
  if (c.REDIS_WAIT_REPLICAS <= 0) return null;
  return new ReplicaWaiter(writer, () => writer.duplicate({ enableAutoPipelining: false }), c.REDIS_WAIT_REPLICAS, c.REDIS_WAIT_TIMEOUT_MS);
}
