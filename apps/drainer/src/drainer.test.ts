/**
 * The drainer over the real Redis and PostgreSQL: every change reaches the books once, a drainer
 * killed mid-batch loses nothing (its entries are read again or claimed), a database outage only
 * delays the books, and Redis forgets final payments once the books hold them.
 */
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BooksReader, BooksWriter, booksPool } from '@sluice/books';
import { useTestDatabase } from '@sluice/books/testing';
import { BooksStream, connectRedis, newPaymentId, PaymentStore, Transitions, type Redis } from '@sluice/store';
import { startTcpProxy } from '@sluice/test-support';
import { Drainer, type DrainerOptions } from './drainer.ts';

const db = useTestDatabase();
const prefix = `test-${randomUUID()}`;
const log = pino({ level: 'silent' });
let redis: Redis;
let reader: Redis;
let store: PaymentStore;
let stream: BooksStream;
let t: Transitions;

beforeAll(() => {
  redis = connectRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  reader = connectRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { enableAutoPipelining: false });
  store = new PaymentStore(redis, { prefix, idempotencyTtlMs: 60_000, retentionMs: 600_000 });
  stream = new BooksStream(redis, store.keys);
  const breaker = { consecutiveFailures: 1_000, failureRate: 1, minCalls: 1_000, windowMs: 10_000, openMs: 60_000, probeIntervalMs: 5_000, closeAfter: 2 };
  t = new Transitions(redis, store.keys, { breaker, maxQueueAgeMs: 3_600_000, retentionMs: 600_000 });
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.unlink(...keys);
  reader.disconnect();
  await redis.quit();
});

const opts = (over: Partial<DrainerOptions> = {}): DrainerOptions => ({
  consumer: `c-${randomUUID().slice(0, 8)}`, batchSize: 50, claimIdleMs: 1_000, hotMs: 60_000, claimsHorizonMs: 0, blockMs: 100, housekeepingMs: 200, ...over,
});

/** A payment accepted, sent, and made final as the worker would. Returns its id. */
async function pay(status: 'APPROVED' | 'DECLINED' | null = 'APPROVED'): Promise<string> {
  const now = Date.now();
  const id = newPaymentId(now);
  const u = randomUUID().replaceAll('-', '');
  const res = await store.create(
    { id, merchantId: 'm_a', provider: 'default', paymentKey: `pk_${u}`, orderId: `ord_${u.slice(0, 20)}`, amount: 1_000, currency: 'KRW', metadata: null, requestId: null, createdAt: now },
    `idem-${u}`, `fp-${u}`, `{"id":"${id}"}`, 1_000_000,
  );
  expect(res.kind).toBe('created');
  if (status === null) return id;
  expect((await t.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' })).ok).toBe(true);
  await t.record({ call: 'confirm', outcome: 'approved', pgFailed: false, httpStatus: 200, paymentId: id, idempotencyKey: `sluice.${id}.confirm`, latencyMs: 120 });
  await t.apply({ paymentId: id, expected: 'confirming', step: { do: 'finalize', status }, event: { test: true }, settlesConfirm: true });
  return id;
}

/** Runs a drainer until the stream has nothing unacknowledged, then stops it. */
async function drainAll(d: Drainer, timeoutMs = 15_000): Promise<void> {
  const running = d.run();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lag = await stream.lag();
    if (lag.pending === 0 && lag.undelivered === 0) break;
    if (Date.now() > deadline) throw new Error(`not drained: ${JSON.stringify(lag)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  d.stop();
  await running;
}

/** The books and Redis agree on every payment, at the same version. */
async function expectBooksMatchRedis(ids: string[]): Promise<void> {
  const rows = await db.pool.query('SELECT id, status, version, attempts FROM payments WHERE id = ANY($1::text[])', [ids]);
  expect(rows.rowCount).toBe(ids.length);
  for (const r of rows.rows) {
    const h = await redis.hmget(store.keys.payment(r.id), 'status', 'v', 'attempts');
    expect([r.status, String(r.version), String(r.attempts)], r.id).toEqual(h);
  }
}

describe('the drainer', () => {
  it('writes every change once: payments at their last version, each event, each PG call', async () => {
    const ids = [await pay('APPROVED'), await pay('DECLINED'), await pay(null)];
    await drainAll(new Drainer(store, stream, reader, new BooksWriter(db.pool), opts(), log));
    await expectBooksMatchRedis(ids);
    const events = await db.pool.query('SELECT payment_id, count(*)::int AS n FROM payment_events WHERE payment_id = ANY($1::text[]) GROUP BY 1', [ids]);
    expect(Object.fromEntries(events.rows.map((r) => [r.payment_id, r.n]))).toEqual({ [ids[0]!]: 3, [ids[1]!]: 3, [ids[2]!]: 1 });
    const calls = await db.pool.query('SELECT payment_id, idempotency_key FROM pg_calls WHERE payment_id = ANY($1::text[]) ORDER BY payment_id', [ids]);
    expect(calls.rows).toHaveLength(2);
    expect(calls.rows.every((c) => c.idempotency_key === `sluice.${c.payment_id}.confirm`)).toBe(true);
    // Acknowledged entries are trimmed.
    expect(await redis.xlen(store.keys.books)).toBe(0);
  });

  it('a drainer killed mid-batch loses nothing: its entries are claimed by another', async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, () => pay('APPROVED')));
    await stream.ensureGroup();
    // A drainer reads a batch and dies before its commit: the entries stay pending under its name.
    const dead = await stream.read(reader, 'dead-drainer', 1_000, false, 100);
    expect(dead.length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1_100));
    await drainAll(new Drainer(store, stream, reader, new BooksWriter(db.pool), opts({ claimIdleMs: 1_000 }), log));
    await expectBooksMatchRedis(ids);
  });

  it('a database outage only delays the books: the batch is written once the database is back', async () => {
    const proxy = await startTcpProxy(Number(new URL(db.url).port || 5432));
    const url = new URL(db.url);
    url.host = `127.0.0.1:${proxy.port}`;
    const pool = booksPool(url.toString());
    const d = new Drainer(store, stream, reader, new BooksWriter(pool), opts(), log);
    proxy.down();
    const ids = await Promise.all(Array.from({ length: 30 }, () => pay('APPROVED')));
    const running = d.run();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(d.stats.failures).toBeGreaterThan(0);
    expect((await stream.lag()).pending + (await stream.lag()).undelivered).toBeGreaterThan(0);
    // Intake goes on while the database is away.
    ids.push(await pay('APPROVED'));
    proxy.up();
    d.stop();
    await running;
    await drainAll(new Drainer(store, stream, reader, new BooksWriter(pool), opts(), log));
    await expectBooksMatchRedis(ids);
    await pool.end();
    await proxy.close();
  });

  it('archives: Redis keeps a final payment for its hot window, then the books answer for it', async () => {
    const id = await pay('APPROVED');
    const open = await pay(null);
    await drainAll(new Drainer(store, stream, reader, new BooksWriter(db.pool), opts({ hotMs: 1_500, claimsHorizonMs: 0 }), log));
    const ttl = await redis.pttl(store.keys.payment(id));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1_500);
    // A payment still in flight is not archived.
    expect(await redis.pttl(store.keys.payment(open))).toBeGreaterThan(60_000);
    const u = (await redis.hget(store.keys.payment(id), 'idemHash'))!;
    // The idempotency record keeps the fingerprint's first 32 characters and the id only, as one small string.
    const idemKey = store.keys.idempotency('m_a', u);
    expect(await redis.get(idemKey)).toBe(`${`fp-${u.slice('idem-'.length)}`.slice(0, 32)} ${id}`);
    expect(await redis.pttl(idemKey)).toBeGreaterThan(50_000);
    expect(Number(await redis.call('MEMORY', 'USAGE', idemKey))).toBeLessThan(300);
    await new Promise((r) => setTimeout(r, 1_700));
    expect(await redis.exists(store.keys.payment(id))).toBe(0);
    const booked = await new BooksReader(db.pool).byId(id);
    expect(booked?.snapshot.status).toBe('APPROVED');
    expect(booked?.intakeBody).toBe(`{"id":"${id}"}`);
  });
});
