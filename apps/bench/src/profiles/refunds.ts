/**
 * Refunds (issue "Merchant lifecycle"): full and partial cancels racing each other, retried by the
 * merchant after timeouts, while the PG commits a share of cancels and then answers 500, drops the
 * connection, or commits late (past Sluice's read timeout). One worker process, the API, a drainer
 * into a fresh books database.
 *
 * Per approved payment, all at once over HTTP: a cancel of 30 %, one of 40 %, one of 50 % and one of
 * the whole balance left, each sent twice with the same Idempotency-Key (the merchant's retry).
 * The amounts overlap, so some are refused (422) at the reservation, never at the PG.
 *
 * Measured: refunds beyond the balance at the PG; double refunds (the PG holding more cancels of a
 * payment than Sluice's SUCCEEDED ones); Sluice's refunded amount per payment against the PG's, in
 * Redis and in the books (PostgreSQL `payment_cancels`), to the won; time from the request to a
 * settled cancel; the PG's limits.
 */
import { randomUUID } from 'node:crypto';
import { booksPool, dropDatabase, ensureDatabase, migrateBooks } from '@sluice/books';
import { parseRefunds } from '@sluice/domain';
import { analysePg } from '../analysis/pg-analysis.ts';
import { percentile } from '../analysis/stats.ts';
import { BacklogSampler, type BenchContext } from '../harness/context.ts';
import { createPool, openLoop } from '../harness/load.ts';
import { BENCH_API_KEY, Stack } from '../harness/stack.ts';

/** What the profile measured. */
export interface RefundsResult {
  payments: number;
  approved: number;
  /** Cancel requests sent (the retries included), and how they were answered. */
  requests: number;
  answers: Record<string, number>;
  /** Distinct cancels accepted, and how they ended. */
  cancels: { accepted: number; succeeded: number; failed: number; pending: number };
  /** Cancels whose outcome was not known at first and were settled by queries. */
  inDoubt: number;
  /** Payments whose PG refunds exceed their amount; PG cancels beyond Sluice's SUCCEEDED ones. */
  beyondBalance: number;
  doubleRefunds: number;
  /** Payments whose refunded amount differs from the PG's, in Redis and in the books. */
  mismatchesRedis: number;
  mismatchesBooks: number;
  refundedSluice: number;
  refundedPg: number;
  refundedBooks: number;
  settleP50Ms: number;
  settleP99Ms: number;
  pgMaxInWindow: number;
  pg429: number;
  problems: string[];
}

const PAYMENTS = 1_500;
const POSTGRES = process.env.BENCH_DATABASE_SERVER ?? 'postgres://postgres@127.0.0.1:5432';
/** The share of cancels the simulator commits and then answers 500, drops, or commits late. */
const FAULTS = { cancelCommitErrorRate: 0.1, cancelDropRate: 0.1, cancelSlowRate: 0.1, cancelSlowMs: 3_000 };

/** Runs the refunds scenario. */
export async function runRefunds(ctx: BenchContext): Promise<RefundsResult> {
  const { sim, progress, redis } = ctx;
  const databaseUrl = `${POSTGRES}/sluice_bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  await ensureDatabase(databaseUrl);
  await migrateBooks(databaseUrl);
  const db = booksPool(databaseUrl);
  await sim.fresh();
  const prefix = ctx.newPrefix();
  // A read timeout (2 s) below the slow cancels' 3 s: those go in doubt and are settled by queries.
  const stack = new Stack(prefix, sim.pgUrl, { DATABASE_URL: databaseUrl, PG_HEADERS_TIMEOUT_MS: '2000', REFUND_SETTLE_MS: '30000' });
  try {
    await stack.startWorker(1);
    await stack.startDrainer();
    const apiUrl = await stack.startApi();
    const sampler = new BacklogSampler(ctx, prefix);
    sampler.start();
    progress.phase(`refunds: ${PAYMENTS} payments`);
    const pool = createPool(apiUrl, 64);
    const load = await openLoop(pool, { rate: 300, seconds: PAYMENTS / 300, tag: `rf-${randomUUID().slice(0, 8)}` });
    await sampler.waitEmpty(load.lastAnswerAt, 120_000);
    const ids = load.ids;
    const approved: { id: string; amount: number; paymentKey: string }[] = [];
    for (const id of ids) {
      const [status, amount, paymentKey] = await redis.hmget(`${prefix}:pay:${id}`, 'status', 'amount', 'paymentKey');
      if (status === 'APPROVED') approved.push({ id, amount: Number(amount), paymentKey: paymentKey! });
    }

    await sim.configure(FAULTS);
    progress.phase(`refunds: 4 racing cancels × 2 sends each of ${approved.length} payments, under cancel faults`);
    const answers: Record<string, number> = {};
    const askedAt = new Map<string, number>();
    let requests = 0;
    const send = async (p: (typeof approved)[number], body: Record<string, unknown>, key: string): Promise<void> => {
      requests++;
      const res = await pool.request({
        method: 'POST', path: `/v1/payments/${p.id}/cancel`, body: JSON.stringify(body),
        headers: { authorization: `Bearer ${BENCH_API_KEY}`, 'content-type': 'application/json', 'idempotency-key': key },
      });
      const text = await res.body.text();
      const label = res.statusCode === 202 ? (res.headers['idempotent-replayed'] ? '202 replayed' : '202') : `${res.statusCode} ${(JSON.parse(text) as { code?: string }).code ?? ''}`;
      answers[label] = (answers[label] ?? 0) + 1;
      if (res.statusCode === 202 && !res.headers['idempotent-replayed']) {
        const cancels = (JSON.parse(text) as { cancels: { id: string }[] }).cancels;
        for (const c of cancels) if (!askedAt.has(c.id)) askedAt.set(c.id, Date.now());
      }
    };
    await Promise.all(
      approved.map(async (p) => {
        const bodies = [
          { reason: 'bench 30%', amount: Math.floor(p.amount * 0.3) },
          { reason: 'bench 40%', amount: Math.floor(p.amount * 0.4) },
          { reason: 'bench 50%', amount: Math.floor(p.amount * 0.5) },
          { reason: 'bench rest' },
        ];
        // Racing each other; each then sent again with its key, as a merchant retrying a timeout.
        await Promise.all(bodies.map(async (b, i) => {
          const key = `rf-${p.id}-${i}`;
          await send(p, b, key);
          await send(p, b, key);
        }));
      }),
    );
    await pool.close();

    progress.phase('refunds: settling');
    const deadline = Date.now() + 300_000;
    let rows: { id: string; amount: number; paymentKey: string; refunds: ReturnType<typeof parseRefunds>; canceled: number }[] = [];
    for (;;) {
      rows = [];
      for (const p of approved) {
        const [field, canceled] = await redis.hmget(`${prefix}:pay:${p.id}`, 'refunds', 'canceledAmount');
        rows.push({ ...p, refunds: parseRefunds(field), canceled: Number(canceled ?? 0) });
      }
      if (rows.every((r) => r.refunds.every((c) => c.status !== 'PENDING')) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    // Let the drainer catch up with the last changes before the books are read.
    await new Promise((r) => setTimeout(r, 3_000));
    await sampler.stop();
    const pg = analysePg(await sim.arrivals(), sampler.samples, Date.now());
    const ledger = (await sim.ledger()).payments;
    const books = new Map<string, number>();
    const booked = await db.query<{ payment_id: string; refunded: string }>(
      "SELECT payment_id, sum(amount)::bigint AS refunded FROM payment_cancels WHERE status = 'SUCCEEDED' AND kind = 'refund' GROUP BY payment_id",
    );
    for (const r of booked.rows) books.set(r.payment_id, Number(r.refunded));

    const settle: number[] = [];
    let succeeded = 0, failed = 0, pending = 0, beyondBalance = 0, doubleRefunds = 0, mismatchesRedis = 0, mismatchesBooks = 0;
    let refundedSluice = 0, refundedPg = 0, refundedBooks = 0;
    for (const r of rows) {
      const held = ledger[r.paymentKey];
      const pgRefunded = held?.refundedAmount ?? 0;
      const done = r.refunds.filter((c) => c.status === 'SUCCEEDED');
      succeeded += done.length;
      failed += r.refunds.filter((c) => c.status === 'FAILED').length;
      pending += r.refunds.filter((c) => c.status === 'PENDING').length;
      for (const c of r.refunds) {
        const at = askedAt.get(c.id);
        if (at !== undefined && c.completedAt) settle.push(c.completedAt - at);
      }
      if (pgRefunded > r.amount) beyondBalance++;
      if ((held?.cancelCount ?? 0) > done.length) doubleRefunds++;
      if (r.canceled !== pgRefunded) mismatchesRedis++;
      if ((books.get(r.id) ?? 0) !== pgRefunded) mismatchesBooks++;
      refundedSluice += r.canceled;
      refundedPg += pgRefunded;
      refundedBooks += books.get(r.id) ?? 0;
    }
    const counters = await redis.hgetall(`${prefix}:counters`);
    return {
      payments: ids.length,
      approved: approved.length,
      requests,
      answers,
      cancels: { accepted: askedAt.size, succeeded, failed, pending },
      inDoubt: Number(counters['pg:cancel:in_doubt'] ?? 0),
      beyondBalance, doubleRefunds, mismatchesRedis, mismatchesBooks, refundedSluice, refundedPg, refundedBooks,
      settleP50Ms: percentile(settle, 50),
      settleP99Ms: percentile(settle, 99),
      pgMaxInWindow: pg.maxInWindow,
      pg429: pg.status429,
      problems: stack.problems().errors,
    };
  } finally {
    await stack.stop();
    await db.end();
    await dropDatabase(databaseUrl);
  }
}
