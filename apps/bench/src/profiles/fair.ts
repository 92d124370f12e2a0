/**
 * Fair share between merchants (issue "Several PGs and a fair share"): on one PG, merchant A
 * offers 1,000 payments/s and merchant B 20/s, both for 20 s, open loop. Measured per merchant:
 * the wait from its payment's intake to its first confirm reaching the PG (the simulator's first
 * confirm arrival for the paymentKey, on the same clock), and for the PG the most calls in any
 * rolling second, 429s and utilisation. With one FIFO queue, B's payments wait behind A's backlog.
 */
import { randomUUID } from 'node:crypto';
import { analysePg } from '../analysis/pg-analysis.ts';
import { percentile } from '../analysis/stats.ts';
import { BacklogSampler, type BenchContext } from '../harness/context.ts';
import { createPool, openLoop } from '../harness/load.ts';
import { readPayments } from '../harness/redis-tools.ts';
import { benchMerchant, merchantsEnv, Stack } from '../harness/stack.ts';

/** One merchant's offer and waits. */
export interface FairMerchant {
  id: string;
  rate: number;
  accepted: number;
  /** Payments whose confirm reached the PG. */
  reached: number;
  p50WaitMs: number;
  p99WaitMs: number;
  maxWaitMs: number;
}

/** What the fair scenario measured. */
export interface FairResult {
  seconds: number;
  merchants: FairMerchant[];
  pg: { maxInWindow: number; status429: number; utilisation: number };
  drained: boolean;
  problems: string[];
}

const SECONDS = 20;
const OFFERS = [
  { id: 'bench', rate: 1_000 },
  { id: 'benchb', rate: 20 },
] as const;

/** Runs the fair scenario once. */
export async function runFair(ctx: BenchContext): Promise<FairResult> {
  const { sim, progress } = ctx;
  await sim.fresh();
  const prefix = ctx.newPrefix();
  const merchants = OFFERS.map((o) => ({ ...o, ...benchMerchant(o.id) }));
  const stack = new Stack(prefix, sim.pgUrl, { MERCHANTS: merchantsEnv(merchants) });
  try {
    await stack.startWorker(1);
    const apiUrl = await stack.startApi();
    const sampler = new BacklogSampler(ctx, prefix);
    sampler.start();
    progress.phase(`fair: ${OFFERS.map((o) => `${o.id} ${o.rate}/s`).join(', ')} for ${SECONDS} s`);
    const runs = await Promise.all(
      merchants.map(async (m) => {
        const pool = createPool(apiUrl, m.rate >= 100 ? 128 : 8);
        const tag = randomUUID().slice(0, 8);
        const intake = await openLoop(pool, { rate: m.rate, seconds: SECONDS, tag, apiKey: m.apiKey });
        await pool.close();
        return { m, intake };
      }),
    );
    progress.phase('fair: drain');
    const accepted = runs.reduce((a, r) => a + r.intake.accepted, 0);
    const lastAnswerAt = Math.max(...runs.map((r) => r.intake.lastAnswerAt));
    const drained = await sampler.waitEmpty(lastAnswerAt, Math.max(120_000, (3 * accepted * 1_000) / 500));
    await sampler.stop();
    const [arrivals, ledger] = await Promise.all([sim.arrivals(), sim.ledger()]);
    const out: FairMerchant[] = [];
    let lastFinal = 0;
    for (const { m, intake } of runs) {
      const rows = await readPayments(ctx.redis, prefix, intake.ids);
      const waits: number[] = [];
      for (const row of rows) {
        lastFinal = Math.max(lastFinal, Number(row.finalizedAt ?? 0));
        const first = row.paymentKey ? ledger.payments[row.paymentKey]?.firstConfirmAt : null;
        if (first != null && row.createdAt) waits.push(first - Number(row.createdAt));
      }
      out.push({
        id: m.id, rate: m.rate, accepted: intake.accepted, reached: waits.length,
        p50WaitMs: percentile(waits, 50), p99WaitMs: percentile(waits, 99), maxWaitMs: waits.length ? Math.max(...waits) : Number.NaN,
      });
    }
    const pg = analysePg(arrivals, sampler.samples, lastFinal || Date.now());
    progress.note(`fair: ${out.map((m) => `${m.id} p99 wait ${(m.p99WaitMs / 1000).toFixed(1)} s`).join(', ')}; PG max/window ${pg.maxInWindow}, 429 ${pg.status429}, utilisation ${pg.utilisation.toFixed(3)}`);
    return { seconds: SECONDS, merchants: out, pg: { maxInWindow: pg.maxInWindow, status429: pg.status429, utilisation: pg.utilisation }, drained, problems: stack.problems().errors };
  } finally {
    await stack.stop();
  }
}
