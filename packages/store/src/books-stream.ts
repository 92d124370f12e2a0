/**
 * The books stream as the drainer reads it: one consumer group (`drainers`), any number of
 * consumers. An entry is acknowledged only after PostgreSQL committed it; a consumer's own
 * unacknowledged entries are read again first, and a dead consumer's are claimed by another once
 * idle. Entries everyone has acknowledged are trimmed. Archiving (lua/archive.lua) lets Redis
 * forget a payment the books hold, after its hot window.
 */
import type { Redis } from 'ioredis';
import type { BookChange, RunChange } from '@sluice/domain';
import type { RootClaims } from './claims.ts';
import type { Keys } from './keys.ts';
import { lua } from './lua/index.ts';

/** The drainers' consumer group. */
export const BOOKS_GROUP = 'drainers';
/** The webhook dispatchers' consumer group: they read the same changes for the events merchants hear of. */
export const WEBHOOKS_GROUP = 'webhooks';

/** A raw stream entry: its id and its fields. */
export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

/** How far behind the drainers are. */
export interface BooksLag {
  /** Entries not yet handed to any drainer. */
  undelivered: number;
  /** Entries handed out and not yet acknowledged (in a batch, or a dead drainer's). */
  pending: number;
  /** Age (ms) of the oldest entry not yet acknowledged; 0 when none. */
  oldestMs: number;
}

/** A payment the books committed, final, at a version: what archiving needs to find its keys. */
export interface ArchivedPayment {
  id: string;
  version: number;
  merchantId: string;
  idemHash: string;
  paymentKey: string;
  orderId: string;
  createdAt: number;
}

type Raw = [string, string[]][];
const entries = (raw: Raw): StreamEntry[] =>
  raw.filter(([, f]) => Array.isArray(f)).map(([id, f]) => {
    const fields: Record<string, string> = {};
    for (let i = 0; i < f.length; i += 2) fields[f[i]!] = f[i + 1]!;
    return { id, fields };
  });

/** A stream entry (as lua/includes/books.lua and breaker-record.lua write it) as the books take it; null when it cannot be read. */
export function changeOf(e: StreamEntry): BookChange | null {
  const f = e.fields;
  try {
    if (f.k === 'p') {
      return {
        kind: 'payment', entryId: e.id, id: f.id!, version: Number(f.v),
        snapshot: JSON.parse(f.s!) as Record<string, string>,
        event: JSON.parse(f.e!) as Record<string, unknown> & { at: number },
        intakeBody: f.b ?? null,
      };
    }
    if (f.k === 'r') {
      return { kind: 'run', entryId: e.id, at: Number(f.at), report: JSON.parse(f.report!) as RunChange['report'], findings: JSON.parse(f.findings ?? '[]') as RunChange['findings'] };
    }
    if (f.k === 'c') {
      return {
        kind: 'call', entryId: e.id, at: Number(f.at), paymentId: f.id || null, call: f.call!, idempotencyKey: f.ik || null,
        outcome: f.outcome!, httpStatus: f.http ? Number(f.http) : null, latencyMs: Number(f.ms ?? 0),
      };
    }
  } catch {
    return null;
  }
  return null;
}

/** The ms part of a stream id. */
const idMs = (id: string): number => Number(id.split('-')[0]);

type ArchiveRedis = Redis & { sluiceArchive(...a: (string | number)[]): Promise<number> };

/** Reads, acknowledges and trims the books stream; archives what the books hold. */
export class BooksStream {
  private readonly r: ArchiveRedis;

  /**
   * @param group the consumer group this reader is in: the drainers' (the books), or the webhook
   *   dispatchers'. Each group reads every entry; trimming waits for every group.
   */
  /**
   * @param keys one payment shard's keys (each shard has its stream)
   * @param claims with several shards, the root's claims, which archiving shortens or releases
   */
  constructor(
    redis: Redis,
    readonly keys: Keys,
    private readonly group: string = BOOKS_GROUP,
    private readonly claims: RootClaims | null = null,
  ) {
    if (keys.shards[0] !== keys) throw new Error('BooksStream: give one shard\'s keys (each shard has its stream)');
    if (!('sluiceArchive' in redis)) redis.defineCommand('sluiceArchive', { numberOfKeys: 5, lua: lua('archive') });
    this.r = redis as ArchiveRedis;
  }

  /** Creates the group unless it exists: from the stream's start, or from now on (`$`). */
  async ensureGroup(from: '0' | '$' = '0'): Promise<void> {
    try {
      await this.r.xgroup('CREATE', this.keys.books, this.group, from, 'MKSTREAM');
    } catch (err) {
      if (!String(err).includes('BUSYGROUP')) throw err;
    }
  }

  /**
   * Up to `count` entries for `consumer`: its own unacknowledged ones when `own` (no wait), else new
   * ones, waiting up to `blockMs`. Give a blocking read a connection of its own.
   */
  async read(redis: Redis, consumer: string, count: number, own: boolean, blockMs: number): Promise<StreamEntry[]> {
    const res = own
      ? await redis.xreadgroup('GROUP', this.group, consumer, 'COUNT', count, 'STREAMS', this.keys.books, '0')
      : await redis.xreadgroup('GROUP', this.group, consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', this.keys.books, '>');
    const stream = (res as [string, Raw][] | null)?.[0];
    return stream ? entries(stream[1]) : [];
  }

  /** Takes over entries another consumer left unacknowledged for `minIdleMs` (a drainer that died). */
  async claimIdle(consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]> {
    const res = (await this.r.xautoclaim(this.keys.books, this.group, consumer, minIdleMs, '0-0', 'COUNT', count)) as [string, Raw, string[]?];
    return entries(res[1]);
  }

  /**
   * Every change in the stream, oldest first, read without the group (nothing is acknowledged):
   * for tests and tools that write the books as the drainer would, at once.
   */
  async allChanges(): Promise<BookChange[]> {
    const raw = (await this.r.xrange(this.keys.books, '-', '+')) as Raw;
    return entries(raw).map(changeOf).filter((c) => c !== null);
  }

  /** Acknowledges entries the books committed. */
  async ack(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.r.xack(this.keys.books, this.group, ...ids);
  }

  /** Where a group stands: its last delivered id and its oldest pending id (or null). */
  private async position(group = this.group): Promise<{ lastDelivered: string; oldestPending: string | null; pending: number; lag: number }> {
    const g = (await this.groups()).find((x) => x.name === group);
    if (!g) throw new Error(`the books stream has no ${group} group`);
    const summary = (await this.r.xpending(this.keys.books, group)) as [number, string | null, string | null, unknown];
    return { lastDelivered: String(g['last-delivered-id']), oldestPending: summary[1], pending: Number(summary[0]), lag: Number(g.lag ?? 0) };
  }

  private async groups(): Promise<Record<string, string | number | null>[]> {
    const rows = (await this.r.xinfo('GROUPS', this.keys.books)) as (string | number | null)[][];
    return rows.map((row) => Object.fromEntries(Array.from({ length: row.length / 2 }, (_, i) => [String(row[2 * i]), row[2 * i + 1]!])));
  }

  /** Deletes every entry before the oldest one some group (drainers, webhook dispatchers) has not acknowledged. Returns how many went. */
  async trim(): Promise<number> {
    let keep: string | null = null;
    for (const g of await this.groups()) {
      const pos = await this.position(String(g.name));
      let k = pos.oldestPending;
      if (k === null) {
        const [ms, seq] = pos.lastDelivered.split('-').map(Number) as [number, number];
        k = `${ms}-${seq + 1}`;
      }
      if (keep === null || compareIds(k, keep) < 0) keep = k;
    }
    return keep === null ? 0 : this.r.xtrim(this.keys.books, 'MINID', keep);
  }

  /** How far behind the drainers are. */
  async lag(nowMs = Date.now()): Promise<BooksLag> {
    const pos = await this.position();
    let oldest = pos.oldestPending;
    if (oldest === null && pos.lag > 0) {
      const next = (await this.r.xrange(this.keys.books, `(${pos.lastDelivered}`, '+', 'COUNT', 1)) as Raw;
      oldest = next[0]?.[0] ?? null;
    }
    return { undelivered: pos.lag, pending: pos.pending, oldestMs: oldest === null ? 0 : Math.max(0, nowMs - idMs(oldest)) };
  }

  /**
   * After the books committed a final payment at `version`: Redis keeps it `hotMs` more, its
   * claims until `claimsUntil` at least, and its idempotency key without the body.
   */
  async archive(p: ArchivedPayment, hotMs: number, claimsUntil: number): Promise<boolean> {
    const k = this.keys;
    const done = await this.r.sluiceArchive(
      k.payment(p.id), k.history(p.id), k.idempotency(p.merchantId, p.idemHash), k.byPaymentKey(p.paymentKey), k.byOrderId(p.orderId),
      p.id, p.version, hotMs, claimsUntil,
    );
    // Several shards: the claims are at the root, settled after the payment (a crash between the
    // two leaves them as intake set them: kept for PAYMENT_RETENTION_MS, never released early).
    if (done !== 0 && this.claims) {
      await this.claims.release(p, done === 2 ? null : Math.max(Date.now() + hotMs, claimsUntil));
    }
    return done !== 0;
  }

  /**
   * After the books committed `changes`: archives each final payment among them at its newest
   * version (Redis skips one that changed since). Returns how many were archived.
   */
  async archiveCommitted(changes: readonly BookChange[], hotMs: number, claimsHorizonMs: number): Promise<number> {
    const latest = new Map<string, ArchivedPayment>();
    for (const c of changes) {
      if (c.kind !== 'payment' || c.snapshot.phase !== 'final') continue;
      const seen = latest.get(c.id);
      if (seen && seen.version >= c.version) continue;
      const s = c.snapshot;
      latest.set(c.id, {
        id: c.id, version: c.version, merchantId: s.merchantId ?? '', idemHash: s.idemHash ?? '', paymentKey: s.paymentKey ?? '', orderId: s.orderId ?? '',
        createdAt: Number(s.createdAt),
      });
    }
    const done = await Promise.all([...latest.values()].map((p) => this.archive(p, hotMs, p.createdAt + claimsHorizonMs).catch(() => false)));
    return done.filter(Boolean).length;
  }
}

/** Orders two stream ids (`<ms>-<seq>`). */
function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am - bm || as - bs;
}
