/**
 * The drainer: reads the books stream as one consumer of the `drainers` group, writes each batch
 * to PostgreSQL in one transaction, acknowledges only after the commit, then lets Redis forget the
 * final payments the books now hold (after their hot window). Any number may run: each entry goes
 * to one of them, and the writes are idempotent and ordered by version, so a batch written twice
 * or out of order changes nothing.
 *
 * What it survives:
 * - PostgreSQL down: the batch is not acknowledged; the drainer reads its own pending entries
 *   again, with backoff, until the database is back. Intake and the PG calls never wait for it.
 * - kill -9: its unacknowledged entries stay pending; it reads them first when it restarts, and
 *   another drainer claims them after DRAIN_CLAIM_IDLE_MS if it does not.
 */
import type { Logger } from 'pino';
import type { BooksWriter } from '@sluice/books';
import type { BookChange } from '@sluice/domain';
import { changeOf, type BooksStream, type PaymentStore, type Redis, type StreamEntry } from '@sluice/store';

/** What the drainer needs besides its clients. */
export interface DrainerOptions {
  /** This consumer's name in the group (host and pid: unique among live drainers). */
  consumer: string;
  batchSize: number;
  claimIdleMs: number;
  /** PAYMENT_HOT_MS: how long Redis keeps a final payment the books hold. */
  hotMs: number;
  /** LATE_CONFIRM_HORIZON_MS: a paymentKey's claim stays in Redis at least this long after intake. */
  claimsHorizonMs: number;
  /** How long a read for new entries waits. */
  blockMs?: number;
  /**
   * After a read that did not fill a batch, how long to wait for more before writing (DRAIN_LINGER_MS):
   * a few large transactions cost PostgreSQL and the drainer far less CPU than many small ones,
   * for a lag that grows by at most this much.
   */
  lingerMs?: number;
  /** How often the lag is published and the stream trimmed. */
  housekeepingMs?: number;
}

/** The drainer's counts since it started. */
export interface DrainerStats {
  batches: number;
  changes: number;
  archived: number;
  failures: number;
  /** Entries that could not be read (counted, logged, acknowledged: they would stall the stream). */
  unreadable: number;
}

const BACKOFF_MAX_MS = 5_000;

/** Drains the books stream into PostgreSQL until stopped. */
export class Drainer {
  readonly stats: DrainerStats = { batches: 0, changes: 0, archived: 0, failures: 0, unreadable: 0 };
  private stopping = false;
  private ownFirst = true;
  private failuresInARow = 0;
  private lastClaim = 0;
  private wake: (() => void) | null = null;

  constructor(
    private readonly store: PaymentStore,
    private readonly stream: BooksStream,
    /** A connection of its own for blocking reads. */
    private readonly reader: Redis,
    private readonly writer: BooksWriter,
    private readonly opts: DrainerOptions,
    private readonly log: Logger,
  ) {}

  /** Runs until {@link stop}; resolves once the batch in hand is written (or given up). */
  async run(): Promise<void> {
    await this.stream.ensureGroup();
    const housekeeping = setInterval(() => void this.housekeep(), this.opts.housekeepingMs ?? 2_000);
    try {
      while (!this.stopping) {
        const entries = await this.next();
        if (entries.length > 0) await this.drain(entries);
      }
    } finally {
      clearInterval(housekeeping);
      await this.housekeep();
    }
  }

  /** Asks the loop to stop after the batch in hand. */
  stop(): void {
    this.stopping = true;
    this.wake?.();
  }

  /** The next entries: its own unacknowledged ones first, then a dead drainer's, then new ones. */
  private async next(): Promise<StreamEntry[]> {
    const { consumer, batchSize } = this.opts;
    if (this.ownFirst) {
      const own = await this.stream.read(this.reader, consumer, batchSize, true, 0);
      if (own.length > 0) return own;
      this.ownFirst = false;
    }
    if (Date.now() - this.lastClaim > this.opts.claimIdleMs / 2) {
      this.lastClaim = Date.now();
      const claimed = await this.stream.claimIdle(consumer, this.opts.claimIdleMs, batchSize);
      if (claimed.length > 0) {
        this.log.warn({ entries: claimed.length }, 'took over a stopped drainer’s unwritten changes');
        return claimed;
      }
    }
    const fresh = await this.stream.read(this.reader, consumer, batchSize, false, this.opts.blockMs ?? 1_000);
    const linger = this.opts.lingerMs ?? 0;
    if (fresh.length === 0 || fresh.length >= batchSize || linger <= 0 || this.stopping) return fresh;
    await this.sleep(linger);
    if (this.stopping) return fresh;
    const more = await this.stream.read(this.reader, consumer, batchSize - fresh.length, false, 1);
    return fresh.concat(more);
  }

  /** Writes one batch, acknowledges it, archives its final payments. */
  private async drain(entries: StreamEntry[]): Promise<void> {
    const changes: BookChange[] = [];
    for (const e of entries) {
      const c = changeOf(e);
      if (c) changes.push(c);
      else {
        this.stats.unreadable++;
        this.log.error({ entryId: e.id, alert: true }, 'books entry cannot be read; acknowledged without writing it');
      }
    }
    try {
      await this.writer.apply(changes);
    } catch (err) {
      // Not acknowledged: read again (own pending first) once the database answers.
      this.stats.failures++;
      this.failuresInARow++;
      this.ownFirst = true;
      const waitMs = Math.min(BACKOFF_MAX_MS, 100 * 2 ** Math.min(this.failuresInARow, 6));
      this.log.warn({ err: (err as Error).message, waitMs, alert: this.failuresInARow === 5 }, 'books write failed; retrying');
      await this.sleep(waitMs);
      return;
    }
    this.failuresInARow = 0;
    await this.stream.ack(entries.map((e) => e.id));
    this.stats.batches++;
    this.stats.changes += changes.length;
    this.stats.archived += await this.stream.archiveCommitted(changes, this.opts.hotMs, this.opts.claimsHorizonMs);
  }

  /** Publishes the lag (the dashboard and /metrics read it) and trims what every drainer acknowledged. */
  private async housekeep(): Promise<void> {
    try {
      const lag = await this.stream.lag();
      // Its shard's counters: the readers add the shards' up, and take the largest lag.
      await this.store.redis.hset(this.stream.keys.counters, 'books:lagMs', lag.oldestMs, 'books:pending', lag.pending, 'books:undelivered', lag.undelivered, 'books:lagAt', Date.now());
      await this.stream.trim();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'books housekeeping failed');
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}
