/**
 * The books scenario: what the drainer and PostgreSQL cost and keep up with.
 * 1. Intake with the drainer running and without it (the stream is appended either way), closed
 *    loop on one API, in alternating rounds.
 * 2. Redis bytes per payment: queued (the drainer running, lag 0), final and archived once the hot
 *    window passed (only the idempotency record is left), and after the idempotency window (0).
 *    PostgreSQL bytes per payment with its history and its PG calls.
 * 3. The drainer's lag (the age of the oldest change not in the books) sampled every 250 ms while
 *    1,000 payments/s are offered and the worker drains at the PG's rate.
 * 4. A database outage: 300 payments/s for 90 s, the database cut off (a TCP proxy) for 60 s of it;
 *    how long after it returns the books are caught up.
 */
import { randomUUID } from 'node:crypto';
import { booksPool, dropDatabase, ensureDatabase, migrateBooks } from '@sluice/books';
import { startTcpProxy } from '@sluice/test-support';
import { postgresCpuSeconds, treeCpuSeconds } from '../analysis/cpu.ts';
import { percentile } from '../analysis/stats.ts';
import { BacklogSampler, type BenchContext } from '../harness/context.ts';
import { closedLoop, createPool, openLoop, paymentRequest } from '../harness/load.ts';
import { memoryByKind } from '../harness/redis-tools.ts';
import { Stack } from '../harness/stack.ts';

/** The server the bench makes its databases on (trust auth, as the tests use). */
const POSTGRES = process.env.BENCH_DATABASE_SERVER ?? 'postgres://postgres@127.0.0.1:5432';

/** One intake round: its rate, its p99, and CPU µs per payment sent. */
interface IntakeRound {
  rps: number;
  p99Ms: number;
  cpuUs: { api: number; drainer: number; postgres: number };
}

/** What the books scenario measured. */
export interface BooksResult {
  /** Medians of {@link INTAKE_ROUNDS} alternating rounds each, and the rounds. */
  intake: {
    withoutDrainer: { rps: number; p99Ms: number }; withDrainer: { rps: number; p99Ms: number };
    rounds: { off: IntakeRound[]; on: IntakeRound[] };
    /** CPU µs per payment sent (medians of the rounds): the API without and with the drainer, the drainer, PostgreSQL (the whole server). */
    cpuUsPerPayment: { apiOff: number; apiOn: number; drainer: number; postgres: number };
  };
  /**
   * Bytes per payment. Queued and final count every key of the run; past the windows, only the
   * keys a payment has of its own ({@link PER_PAYMENT_KINDS}): what is left besides is a fixed
   * residue, whatever the volume (BullMQ's last 2,000 completed jobs and 1,000 events per queue,
   * the counters), given in bytes in all (`…FixedBytes`).
   */
  memory: {
    payments: number; queuedBytes: number; finalBytes: number;
    archivedBytes: number; archivedFixedBytes: number; afterIdempotencyBytes: number; afterFixedBytes: number;
    archivedByKind: [string, number][];
  };
  postgresBytesPerPayment: number;
  lag: { samples: number; p50Ms: number; p99Ms: number; maxMs: number; offeredRps: number; seconds: number };
  outage: { rps: number; outageSeconds: number; caughtUpSeconds: number | null; maxLagMs: number; lost: number };
  /** Error lines of the stacks' processes (the drainers' included). */
  problems: string[];
}

const HOT_MS = 1_000;
/** Intake rounds with and without the drainer, and their length after 1 s of warm-up. */
const INTAKE_ROUNDS = 3;
const INTAKE_ROUND_S = 4;
/** The hot window in force with these settings: RECONCILE_LOOKBACK_MS + 2 × RECONCILE_INTERVAL_MS (config hotWindowMs). */
const HOT_WINDOW_MS = 60_000 + 2 * 1_000;
/**
 * Long enough that every idempotency key is still held when the hot window has passed (intake
 * about 60 s, the worker at the PG's 500/s, the hot window), so that what is measured then is
 * what an archived payment keeps; {@link BooksResult} says how many were held.
 */
const IDEMPOTENCY_MS = 420_000;

/** The lag as the dashboard reads it: a drainer that stopped reporting shows a growing lag. */
async function lagMs(ctx: BenchContext, prefix: string): Promise<{ lagMs: number; open: number }> {
  const [lag, pending, undelivered, at] = await ctx.redis.hmget(`${prefix}:counters`, 'books:lagMs', 'books:pending', 'books:undelivered', 'books:lagAt');
  const stale = at !== null && Date.now() - Number(at) > 10_000 ? Date.now() - Number(at) : 0;
  return { lagMs: Number(lag ?? 0) + stale, open: Number(pending ?? 0) + Number(undelivered ?? 0) };
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/**
 * The kinds of key (redis-tools `memoryByKind`) that exist once per payment. Everything else is
 * bounded whatever the volume: BullMQ keeps a count of finished jobs and events, not one per payment.
 */
const PER_PAYMENT_KINDS = ['payment hash (pay:<id>)', 'payment history (pay:<id>:hist)', 'idempotency key (idem:…)', 'paymentKey / orderId claims (pk:, oid:)'];
const perPayment = (m: { byKind: Map<string, { bytes: number }> }): number =>
  PER_PAYMENT_KINDS.reduce((a, k) => a + (m.byKind.get(k)?.bytes ?? 0), 0);

/** Runs the books scenario. */
export async function runBooks(ctx: BenchContext): Promise<BooksResult> {
  const { sim, progress, redis } = ctx;
  const databaseUrl = `${POSTGRES}/sluice_bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  await ensureDatabase(databaseUrl);
  await migrateBooks(databaseUrl);
  const db = booksPool(databaseUrl);
  const env = {
    DATABASE_URL: databaseUrl, PAYMENT_HOT_MS: String(HOT_MS), RECONCILE_LOOKBACK_MS: '60000', RECONCILE_INTERVAL_MS: '1000',
    LATE_CONFIRM_HORIZON_MS: '1000', IDEMPOTENCY_TTL_MS: String(IDEMPOTENCY_MS), BACKLOG_MAX_SECONDS: '1000000',
  };
  try {
    // 1 and 2: intake A/B, then memory and the books' size.
    await sim.fresh();
    const prefix = ctx.newPrefix();
    const stack = new Stack(prefix, sim.pgUrl, env);
    let intake: BooksResult['intake'];
    let memory: BooksResult['memory'];
    let postgresBytesPerPayment: number;
    const problems: string[] = [];
    try {
      const apiUrl = await stack.startApi();
      const tag = randomUUID().slice(0, 8);
      let offset = 0;
      const drained = () => until(async () => (await lagMs(ctx, prefix)).open === 0, 120_000);
      // CPU per payment sent in the round (its warm-up too); the drainer's and PostgreSQL's until the round's
      // changes are in the books.
      const cpu = () => ({ api: treeCpuSeconds(stack.api?.child.pid), drainer: stack.drainer ? treeCpuSeconds(stack.drainer.child.pid) : 0, postgres: postgresCpuSeconds() });
      const measure = async () => {
        const before = cpu();
        const r = await closedLoop(apiUrl, { connections: 32, warmupS: 1, seconds: INTAKE_ROUND_S, request: (i) => paymentRequest(tag, offset + i) });
        offset += 10_000_000;
        if (stack.drainer) await drained();
        const after = cpu();
        const us = (k: keyof typeof before) => ((after[k] - before[k]) * 1e6) / Math.max(1, r.sent);
        return { rps: r.rps, p99Ms: percentile(r.latency, 99), cpuUs: { api: us('api'), drainer: us('drainer'), postgres: us('postgres') } };
      };
      // Rounds alternate, off then on, so that neither side has the warmer process or the fuller
      // Redis; the drainer starts with an empty backlog (it drains what the last round left
      // before its round begins) and is stopped once it drained its own round's changes.
      const rounds: BooksResult['intake']['rounds'] = { off: [], on: [] };
      for (let i = 0; i < INTAKE_ROUNDS; i++) {
        progress.phase(`books: intake without a drainer (${i + 1}/${INTAKE_ROUNDS})`);
        rounds.off.push(await measure());
        await stack.startDrainer();
        await drained();
        progress.phase(`books: intake with the drainer (${i + 1}/${INTAKE_ROUNDS})`);
        rounds.on.push(await measure());
        await drained();
        if (i < INTAKE_ROUNDS - 1) await stack.stopDrainer();
      }
      const lastIntakeAt = Date.now();
      const median = (xs: IntakeRound[]) => ({ rps: percentile(xs.map((x) => x.rps), 50), p99Ms: percentile(xs.map((x) => x.p99Ms), 50) });
      const medianOf = (xs: IntakeRound[], k: keyof IntakeRound['cpuUs']) => percentile(xs.map((x) => x.cpuUs[k]), 50);
      intake = {
        withoutDrainer: median(rounds.off), withDrainer: median(rounds.on), rounds,
        cpuUsPerPayment: { apiOff: medianOf(rounds.off, 'api'), apiOn: medianOf(rounds.on, 'api'), drainer: medianOf(rounds.on, 'drainer'), postgres: medianOf(rounds.on, 'postgres') },
      };
      await new Promise((r) => setTimeout(r, 2_500));
      const n = Number(await redis.zcard(`${prefix}:open`));
      const queued = await memoryByKind(redis, prefix);

      progress.phase(`books: the worker takes ${n} payments to final`);
      const sampler = new BacklogSampler(ctx, prefix);
      sampler.start();
      await stack.startWorker(1);
      await sampler.waitEmpty(Date.now(), Math.max(120_000, (3 * n * 1_000) / 500));
      await sampler.stop();
      await until(async () => (await lagMs(ctx, prefix)).open === 0, 120_000);
      const final = await memoryByKind(redis, prefix);
      const sizes = await db.query(
        `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes FROM pg_class c
         WHERE c.relkind = 'r' AND (c.relname LIKE 'payments_%' OR c.relname LIKE 'payment_events_%' OR c.relname LIKE 'pg_calls_%' OR c.relname IN ('order_claims', 'payment_key_claims'))`,
      );
      const booked = Number((await db.query('SELECT count(*)::bigint AS n FROM payments')).rows[0].n);
      postgresBytesPerPayment = Number(sizes.rows[0].bytes) / Math.max(1, booked);
      progress.phase('books: waiting out the hot window');
      await stack.stopWorker();
      await new Promise((r) => setTimeout(r, HOT_WINDOW_MS + 3_000));
      const archived = await memoryByKind(redis, prefix);
      const idemHeld = archived.byKind.get('idempotency key (idem:…)')?.keys ?? 0;
      if (idemHeld < n) problems.push(`bench: only ${idemHeld} of ${n} idempotency keys were still held past the hot window; the archived figure is too low`);
      progress.phase('books: waiting out the idempotency window');
      await new Promise((r) => setTimeout(r, Math.max(0, lastIntakeAt + IDEMPOTENCY_MS + 5_000 - Date.now())));
      const after = await memoryByKind(redis, prefix);
      const per = (b: number) => b / Math.max(1, n);
      memory = {
        payments: n, queuedBytes: per(queued.total), finalBytes: per(final.total),
        archivedBytes: per(perPayment(archived)), archivedFixedBytes: archived.total - perPayment(archived),
        afterIdempotencyBytes: per(perPayment(after)), afterFixedBytes: after.total - perPayment(after),
        archivedByKind: [...archived.byKind].map(([k, e]) => [k, per(e.bytes)] as [string, number]).sort((a, b) => b[1] - a[1]),
      };
    } finally {
      await stack.stop();
      problems.push(...stack.problems().errors);
    }

    // 3: the drainer's lag while the gateway runs flat out.
    await sim.fresh();
    const lagPrefix = ctx.newPrefix();
    const lagStack = new Stack(lagPrefix, sim.pgUrl, env);
    const rate = 1_000;
    const seconds = 20;
    let lag: BooksResult['lag'];
    try {
      const apiUrl = await lagStack.startApi();
      await lagStack.startWorker(1);
      await lagStack.startDrainer();
      progress.phase(`books: drainer lag at ${rate}/s offered for ${seconds} s`);
      const samples: number[] = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          samples.push((await lagMs(ctx, lagPrefix)).lagMs);
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      const pool = createPool(apiUrl, 64);
      await openLoop(pool, { rate, seconds, tag: randomUUID().slice(0, 8) });
      await pool.close();
      sampling = false;
      await sampler;
      const a = Float64Array.from(samples);
      lag = { samples: a.length, p50Ms: percentile(a, 50), p99Ms: percentile(a, 99), maxMs: Math.max(...samples), offeredRps: rate, seconds };
    } finally {
      await lagStack.stop();
      problems.push(...lagStack.problems().errors);
    }

    // 4: a database outage under load.
    await sim.fresh();
    const outPrefix = ctx.newPrefix();
    const proxy = await startTcpProxy(Number(new URL(databaseUrl).port || 5432));
    const viaProxy = new URL(databaseUrl);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    const outStack = new Stack(outPrefix, sim.pgUrl, env);
    let outage: BooksResult['outage'];
    try {
      const apiUrl = await outStack.startApi();
      await outStack.startWorker(1);
      await outStack.startDrainer({ DATABASE_URL: viaProxy.toString() });
      const outRate = 300;
      const outageSeconds = 60;
      progress.phase(`books: ${outRate}/s for 90 s, the database away for ${outageSeconds} s`);
      const pool = createPool(apiUrl, 32);
      let maxLag = 0;
      let upAt = 0;
      let caughtUpAt: number | null = null;
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const l = await lagMs(ctx, outPrefix);
          maxLag = Math.max(maxLag, l.lagMs);
          if (upAt > 0 && caughtUpAt === null && l.lagMs < 1_000) caughtUpAt = Date.now();
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      const load = openLoop(pool, { rate: outRate, seconds: 90, tag: randomUUID().slice(0, 8) });
      await new Promise((r) => setTimeout(r, 10_000));
      proxy.down();
      await new Promise((r) => setTimeout(r, outageSeconds * 1_000));
      proxy.up();
      upAt = Date.now();
      const res = await load;
      await pool.close();
      await until(async () => caughtUpAt !== null, 120_000);
      // Drain what is left, then count what the books hold of what was accepted.
      await until(async () => (await lagMs(ctx, outPrefix)).open === 0, 120_000);
      watching = false;
      await watcher;
      const held = Number((await db.query('SELECT count(*)::bigint AS n FROM payments WHERE id = ANY($1::text[])', [res.ids])).rows[0].n);
      outage = { rps: outRate, outageSeconds, caughtUpSeconds: caughtUpAt === null ? null : (caughtUpAt - upAt) / 1_000, maxLagMs: maxLag, lost: res.ids.length - held };
    } finally {
      await outStack.stop();
      problems.push(...outStack.problems().errors);
      await proxy.close();
    }
    return { intake, memory, postgresBytesPerPayment, lag, outage, problems };
  } finally {
    await db.end();
    await dropDatabase(databaseUrl);
  }
}
