/**
 * The client side of the global permit gate. Every PG call waits here for a send slot.
 *
 * - Slots come from one Lua script over Redis TIME (`acquire.lua`), in small batches to save
 *   round trips, and only as many as there are callers waiting, so that no process hoards the
 *   budget and a crashed process wastes at most one batch.
 * - Callers are served by priority: `high` (inquiries and cancels: money in doubt) before `low`
 *   (new confirms). Across processes, `high` may reserve further ahead (`priorityHorizonMs`) than
 *   `low` (`horizonMs`), so in-doubt work takes the budget first when it is contested.
 * - A caller is woken at its slot, never before. It may also be told when its slot is assigned
 *   (at most the horizon ahead), to do its own last checks while it waits rather than after the
 *   slot. It then checks `isTooLate` right before sending and takes a new slot if its lateness
 *   would exceed what the margin covers.
 * - The slots are on the Redis clock; this process knows that clock only within bounds (each
 *   fetch brackets the script's run between its send and its answer). A slot is therefore due at
 *   the latest moment it can be on this process's clock (never early), and its lateness is
 *   measured from the earliest (so what the clock's uncertainty costs is counted as lateness,
 *   never hidden from the late-send guard and the margin).
 * - Fail closed: while Redis cannot be reached, no slot is granted, and callers wait.
 */
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MarginEstimator } from './margin.ts';

/** A call's priority at the gate: inquiries and cancels (high) before confirms and listings (low). */
export type Priority = 'high' | 'low';

/** A send slot: when it is, the margin it was granted with, and its priority. */
export interface Permit {
  /**
   * The earliest moment the slot can be on this process's clock (epoch ms, fractional): lateness
   * is measured from it. The permit was handed out no earlier than the latest such moment.
   */
  readonly slotMs: number;
  /** The margin (ms) the gate kept when it granted this slot. */
  readonly marginMs: number;
  readonly priority: Priority;
}

/** The gate's limit, window, margins, horizons and batch size. */
export interface GateOptions {
  /** Key prefix; the gate's keys are `<prefix>:gate:*`. */
  prefix: string;
  limit: number;
  windowMs: number;
  marginMinMs: number;
  marginMaxMs: number;
  horizonMs: number;
  priorityHorizonMs: number;
  batchMax: number;
  clientId?: string;
  /** The local clock, epoch ms. */
  now?: () => number;
  /**
   * How the last millisecond before a slot is waited (timers fire on whole milliseconds):
   * `turns` looks again on every turn of the event loop (a busy wait, half of the thread's time
   * at 500 slots a second); `sleep` blocks the thread for what is left (`Atomics.wait`, woken
   * within a few tens of µs). Only for a thread that does nothing but send, never a main thread.
   */
  lastMs?: 'turns' | 'sleep';
}

interface Waiter {
  priority: Priority;
  resolve: (p: Permit) => void;
  reject: (e: Error) => void;
  assigned?: (p: Permit) => void;
}

/** A granted slot on this process's clock: lateness counts from `slotMs`, it is due at `dueMs`. */
interface Held {
  slotMs: number;
  dueMs: number;
  marginMs: number;
}

interface Scheduled extends Held {
  waiter: Waiter;
}

const SCRIPT = readFileSync(new URL('./acquire.lua', import.meta.url), 'utf8');
const NEED_TTL_US = 10_000_000;
const localNow = (): number => performance.timeOrigin + performance.now();
/** What `lastMs: 'sleep'` blocks on: nothing ever wakes it, its timeout does. */
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

type GateRedis = Redis & { sluiceGateAcquire(...args: (string | number)[]): Promise<number[]> };

/**
 * `INFO replication` of the server that owns KEYS[1] (scripts run where their keys are);
 * `no-writes`, so that a primary refusing writes (min-replicas-to-write) still answers.
 */
const REPLICATION_OF_KEY_OWNER = "#!lua flags=no-writes\nreturn redis.call('INFO', 'replication')";

/** `master_replid` of an `INFO replication` answer ('' when it has none: the check is then skipped). */
export function replicationIdOf(info: string): string {
  return /^master_replid:([0-9a-f]+)\r?$/m.exec(info)?.[1] ?? '';
}

/** The global rolling-window gate: every PG request takes a slot from it. */
export class PermitGate {
  readonly margin: MarginEstimator;
  private readonly r: GateRedis;
  private readonly o: Required<GateOptions>;
  private readonly keys: [string, string, string, string];
  private readonly waiting: { high: Waiter[]; low: Waiter[] } = { high: [], low: [] };
  private held: Held[] = [];
  private scheduled: Scheduled[] = [];
  private fetching = false;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /**
   * Redis clock − local clock (ms) lies in [clockLo, clockHi], from the fetch with the smallest
   * round trip lately.
   */
  private clockLo = 0;
  private clockHi = 0;
  private bestRttMs = Infinity;
  private bestRttAt = -Infinity;
  private lastMarginMs: number;
  /**
   * The replication id of the Redis this connection is on, read at the first fetch after each
   * (re)connect; the script pauses when the gate's state was written under another (acquire.lua).
   */
  private replid: string | null = null;
  /** Connection closes seen: a fetch whose connection closed meanwhile uses none of its answer. */
  private closes = 0;
  /** Observability: grants, re-acquires (too late), fetches, and looks at the schedule (`fire`). */
  readonly stats = { granted: 0, tooLate: 0, fetches: 0, fetchErrors: 0, rateLimited: 0, looks: 0 };

  constructor(redis: Redis, opts: GateOptions) {
    this.o = { clientId: randomUUID(), now: localNow, lastMs: 'turns', ...opts };
    this.margin = new MarginEstimator({ minMs: opts.marginMinMs, maxMs: opts.marginMaxMs, windowMs: opts.windowMs });
    this.lastMarginMs = opts.marginMinMs;
    this.keys = [`${opts.prefix}:gate:slots`, `${opts.prefix}:gate:last`, `${opts.prefix}:gate:margins`, `${opts.prefix}:gate:replid`];
    if (!('sluiceGateAcquire' in redis)) redis.defineCommand('sluiceGateAcquire', { numberOfKeys: 4, lua: SCRIPT });
    this.r = redis as GateRedis;
    // A new connection may be to another server (a failover): read its replication id again.
    redis.on?.('close', () => {
      this.replid = null;
      this.closes++;
    });
  }

  /**
   * Waits for a send slot. Resolves at the slot (never before); never rejects unless closed.
   * `assigned` is called once the slot is this caller's, up to the horizon before it is due.
   */
  acquire(priority: Priority, assigned?: (p: Permit) => void): Promise<Permit> {
    if (this.closed) return Promise.reject(new Error('permit gate closed'));
    return new Promise<Permit>((resolve, reject) => {
      this.waiting[priority].push({ priority, resolve, reject, assigned });
      this.pump();
    });
  }

  /** The send-side guard: true when sending now would be later than the margin covers. */
  isTooLate(p: Permit, nowMs = this.o.now()): boolean {
    const allowed = Math.min(this.margin.allowedLatenessMs(nowMs), p.marginMs - this.o.marginMinMs);
    const late = nowMs - p.slotMs > Math.max(0, allowed);
    if (late) {
      this.stats.tooLate++;
      // Counted in the lateness the margin adapts to: it must see what it refused, too.
      this.margin.record(nowMs - p.slotMs);
    }
    return late;
  }

  /** Reports when the request's headers went onto the socket, to adapt the margin. */
  sent(p: Permit, atMs = this.o.now()): void {
    this.margin.record(atMs - p.slotMs);
  }

  /** A 429 came back: count it and widen the margin. */
  rateLimited(): void {
    this.stats.rateLimited++;
    this.margin.widen(this.o.now());
  }

  /** A moment on this process's clock, on the Redis clock the slots are counted on (ms). */
  serverMs(localMs: number): number {
    return localMs + this.offsetMs();
  }

  /** The margin the gate kept at the last grant (ms). */
  currentMarginMs(): number {
    return this.lastMarginMs;
  }

  /** Callers waiting for a slot in this process. */
  queued(): number {
    return this.waiting.high.length + this.waiting.low.length + this.scheduled.length;
  }

  /**
   * For shutdown: rejects every waiter without a slot, and fetches no more. A slot already
   * assigned is still handed out at its time (at most the horizon away): its caller may have
   * acted on it already (a payment's guard runs from the assignment, pg-client's `sendHeld`), and
   * a call half made is worse than one made.
   */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const err = new Error('permit gate closed');
    for (const w of [...this.waiting.high, ...this.waiting.low]) w.reject(err);
    this.waiting.high = [];
    this.waiting.low = [];
  }

  private nextWaiter(): Waiter | undefined {
    return this.waiting.high.shift() ?? this.waiting.low.shift();
  }

  private pump(): void {
    if (this.closed) return;
    const now = this.o.now();
    // Slots already in the past by more than the margin allows are useless: drop them.
    while (this.held.length > 0 && now - this.held[0]!.slotMs > this.held[0]!.marginMs - this.o.marginMinMs) this.held.shift();
    while (this.held.length > 0) {
      const w = this.nextWaiter();
      if (!w) break;
      const slot = this.held.shift()!;
      // In due order (the clock bounds differ a little from fetch to fetch).
      let i = this.scheduled.length;
      while (i > 0 && this.scheduled[i - 1]!.dueMs > slot.dueMs) i--;
      this.scheduled.splice(i, 0, { ...slot, waiter: w });
      w.assigned?.({ slotMs: slot.slotMs, marginMs: slot.marginMs, priority: w.priority });
    }
    this.arm();
    const wanting = this.waiting.high.length + this.waiting.low.length;
    if (wanting > 0 && !this.fetching && !this.retryTimer) void this.fetch(Math.min(this.o.batchMax, wanting));
  }

  private arm(): void {
    if (this.timer || this.immediate || this.scheduled.length === 0) return;
    const wait = this.scheduled[0]!.dueMs - this.o.now();
    this.timer = setTimeout(() => this.fire(), Math.max(0, wait));
  }

  private fire(): void {
    this.timer = null;
    this.immediate = null;
    this.stats.looks++;
    let now = this.o.now();
    const first = this.scheduled[0];
    if (first && this.o.lastMs === 'sleep' && first.dueMs > now && first.dueMs - now < 1) {
      // Nothing due yet and the next slot within the millisecond: sleep until it, then hand it out.
      Atomics.wait(SLEEPER, 0, 0, first.dueMs - now);
      now = this.o.now();
    }
    while (this.scheduled.length > 0 && this.scheduled[0]!.dueMs <= now) {
      const s = this.scheduled.shift()!;
      this.stats.granted++;
      s.waiter.resolve({ slotMs: s.slotMs, marginMs: s.marginMs, priority: s.waiter.priority });
    }
    if (this.scheduled.length > 0 && this.scheduled[0]!.dueMs - now < 1) {
      // Timers fire on whole milliseconds; never send early, so look again on the next turn
      // (after the sends just resolved have gone out: never sleep in front of them).
      this.immediate = setImmediate(() => this.fire());
      return;
    }
    this.arm();
  }

  private async fetch(n: number): Promise<void> {
    this.fetching = true;
    const high = this.waiting.high.length > 0;
    try {
      const closes = this.closes;
      const replid = this.replid ?? (this.replid = await this.readReplicationId());
      const t0 = this.o.now();
      const needUs = Math.round(this.margin.needMs(t0) * 1000);
      const res = await this.r.sluiceGateAcquire(
        ...this.keys,
        n, this.o.limit, this.o.windowMs * 1000, Math.round(this.o.marginMinMs * 1000), Math.round(this.o.marginMaxMs * 1000),
        (high ? this.o.priorityHorizonMs : this.o.horizonMs) * 1000, this.o.clientId, needUs, NEED_TTL_US, '', replid,
      );
      const t1 = this.o.now();
      this.stats.fetches++;
      // The connection closed since the id was read: ioredis may have sent the script to another
      // server (a promoted replica) under the old id, so its slots skipped the pause. Use none.
      if (this.closes !== closes) throw new Error('the connection changed during the fetch');
      const serverMs = res[0]! / 1000;
      this.observeClock(serverMs, t0, t1);
      const marginMs = res[1]! / 1000;
      this.lastMarginMs = marginMs;
      const retryAtMs = res[2]! / 1000;
      // The script ran between t0 and t1, so this fetch alone puts the offset in
      // [serverMs − t1, serverMs − t0]; the best fetch lately may narrow that. A slot is due at
      // the latest moment it can be here (a fetch Redis sat on cannot make it early), and its
      // lateness counts from the earliest (an answer handled late cannot hide its lateness).
      let lo = Math.max(this.clockLo, serverMs - t1);
      let hi = Math.min(this.clockHi, serverMs - t0);
      if (lo > hi) [lo, hi] = [serverMs - t1, serverMs - t0];
      for (let i = 3; i < res.length; i++) this.held.push({ slotMs: res[i]! / 1000 - hi, dueMs: res[i]! / 1000 - lo, marginMs });
      // Nothing fits in the horizon now. Come back when half a horizon more has opened, so that
      // the next fetch takes a batch instead of one slot per round trip.
      if (res.length === 3 && retryAtMs > 0) this.retryAt(retryAtMs - this.offsetMs() + this.o.horizonMs / 2);
    } catch {
      this.stats.fetchErrors++;
      // Fail closed: no slot, callers keep waiting; try again shortly.
      this.retryAt(this.o.now() + 100);
    } finally {
      this.fetching = false;
    }
    this.pump();
  }

  /**
   * The replication id of the server that holds the gate's keys. Read through a script that names
   * a gate key, so that on a Redis Cluster it is the slot owner's (INFO alone reaches any node).
   * An ACL user without INFO gets '' (no failover pause; the README says to allow it) rather
   * than a gate that never grants.
   */
  private async readReplicationId(): Promise<string> {
    try {
      return replicationIdOf((await this.r.eval(REPLICATION_OF_KEY_OWNER, 1, this.keys[0]!)) as string);
    } catch (err) {
      if (err instanceof Error && /NOPERM/.test(err.message)) return '';
      throw err;
    }
  }

  private retryAt(atLocalMs: number): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.pump();
    }, Math.max(0, atLocalMs - this.o.now()));
  }

  private observeClock(serverMs: number, t0: number, t1: number): void {
    const rtt = t1 - t0;
    const lo = serverMs - t1;
    const hi = serverMs - t0;
    // Keep the tightest sample of the last 10 s. A sample that cannot be true together with it
    // (the Redis clock was stepped, or Redis is another host after a failover) replaces it.
    if (rtt <= this.bestRttMs || t1 - this.bestRttAt > 10_000 || lo > this.clockHi || hi < this.clockLo) {
      this.bestRttMs = rtt;
      this.bestRttAt = t1;
      this.clockLo = lo;
      this.clockHi = hi;
    }
  }

  /** The best estimate of Redis clock − local clock (ms): the middle of the bounds. */
  private offsetMs(): number {
    return (this.clockLo + this.clockHi) / 2;
  }
}
