/**
 * Fair share between merchants (issue "Several PGs and a fair share"), on one PG, one worker
 * process, open loop:
 *
 * - fair: merchant A offers 1,000 payments/s and B 20/s for 20 s. Measured per merchant: the wait
 *   from its payment's intake to its first confirm reaching the PG (the simulator's first confirm
 *   arrival for the paymentKey, on the same clock); for the PG the most calls in any rolling
 *   second, 429s and utilisation. Each fair run is paired with a single-merchant run of the same
 *   shape (A alone), alternating, so that the utilisation is compared on the same machine state.
 * - weights: A (weight 3) and B (weight 1) both flood; their shares of the PG's confirms while
 *   both have payments waiting.
 */
import { randomUUID } from 'node:crypto';
import { analysePg } from '../analysis/pg-analysis.ts';
import { median, percentile } from '../analysis/stats.ts';
import { BacklogSampler, type BenchContext } from '../harness/context.ts';
import { createPool, openLoop } from '../harness/load.ts';
import { readPayments } from '../harness/redis-tools.ts';
import { benchMerchant, merchantsEnv, Stack } from '../harness/stack.ts';

/** One merchant's offer and waits. */
export interface FairMerchant {
  id: string;
  rate: number;
  weight: number;
  accepted: number;
  /** Payments whose confirm reached the PG. */
  reached: number;
  p50WaitMs: number;
  p99WaitMs: number;
  maxWaitMs: number;
}

/** One run: the merchants' waits and the PG's figures. */
export interface FairRun {
  merchants: FairMerchant[];
  pg: { maxInWindow: number; status429: number; utilisation: number };
  drained: boolean;
}

/** What the weights scenario measured. */
export interface WeightsResult {
  seconds: number;
  merchants: { id: string; rate: number; weight: number; accepted: number; confirmsWhileBoth: number }[];
  /** The window in which both merchants had payments waiting (ms, from the first intake). */
  windowMs: [number, number];
  /** A's confirms ÷ B's in that window (3 is exact). */
  ratio: number;
  pg: { maxInWindow: number; status429: number };
  drained: boolean;
}

/** What the fair profile measured. */
export interface FairResult {
  seconds: number;
  /** The runs with both merchants, and the single-merchant runs of the same shape, alternating. */
  fair: FairRun[];
  single: FairRun[];
  weights: WeightsResult | null;
  problems: string[];
}

const SECONDS = 20;
const RUNS = 3;
const FLOOD = { id: 'bench', rate: 1_000, weight: 1 };
const SMALL = { id: 'benchb', rate: 20, weight: 1 };
const WEIGHTS_SECONDS = 15;
const WEIGHTED = [
  { id: 'bench', rate: 600, weight: 3 },
  { id: 'benchb', rate: 600, weight: 1 },
] as const;

interface Offer {
  id: string;
  rate: number;
  weight: number;
}

interface Measured {
  run: FairRun;
  /** Per merchant: its payments' first confirm arrival times (ms). */
  firsts: number[][];
  startedAt: number;
  problems: string[];
}

/** One open-loop run of the offers on a fresh stack: waits and PG figures. */
async function runOnce(ctx: BenchContext, offers: readonly Offer[], seconds: number, label: string): Promise<Measured> {
  const { sim, progress } = ctx;
  await sim.fresh();
  const prefix = ctx.newPrefix();
  const merchants = offers.map((o) => ({ ...o, ...benchMerchant(o.id) }));
  const weights = merchants.filter((m) => m.weight !== 1).map((m) => `${m.id}:${m.weight}`).join(',');
  const stack = new Stack(prefix, sim.pgUrl, { MERCHANTS: merchantsEnv(merchants), ...(weights ? { MERCHANT_WEIGHTS: weights } : {}) });
  try {
    await stack.startWorker(1);
    const apiUrl = await stack.startApi();
    const sampler = new BacklogSampler(ctx, prefix);
    sampler.start();
    progress.phase(`${label}: ${offers.map((o) => `${o.id} ${o.rate}/s${o.weight !== 1 ? ` ×${o.weight}` : ''}`).join(', ')} for ${seconds} s`);
    const startedAt = Date.now();
    const runs = await Promise.all(
      merchants.map(async (m) => {
        const pool = createPool(apiUrl, m.rate >= 100 ? 128 : 8);
        const tag = randomUUID().slice(0, 8);
        const intake = await openLoop(pool, { rate: m.rate, seconds, tag, apiKey: m.apiKey });
        await pool.close();
        return { m, intake };
      }),
    );
    progress.phase(`${label}: drain`);
    const accepted = runs.reduce((a, r) => a + r.intake.accepted, 0);
    const lastAnswerAt = Math.max(...runs.map((r) => r.intake.lastAnswerAt));
    const drained = await sampler.waitEmpty(lastAnswerAt, Math.max(120_000, (3 * accepted * 1_000) / 500));
    await sampler.stop();
    const [arrivals, ledger] = await Promise.all([sim.arrivals(), sim.ledger()]);
    const out: FairMerchant[] = [];
    const firsts: number[][] = [];
    let lastFinal = 0;
    for (const { m, intake } of runs) {
      const rows = await readPayments(ctx.redis, prefix, intake.ids);
      const waits: number[] = [];
      const at: number[] = [];
      for (const row of rows) {
        lastFinal = Math.max(lastFinal, Number(row.finalizedAt ?? 0));
        const first = row.paymentKey ? ledger.payments[row.paymentKey]?.firstConfirmAt : null;
        if (first != null && row.createdAt) {
          waits.push(first - Number(row.createdAt));
          at.push(first);
        }
      }
      firsts.push(at);
      out.push({
        id: m.id, rate: m.rate, weight: m.weight, accepted: intake.accepted, reached: waits.length,
        p50WaitMs: percentile(waits, 50), p99WaitMs: percentile(waits, 99), maxWaitMs: waits.length ? Math.max(...waits) : Number.NaN,
      });
    }
    const pg = analysePg(arrivals, sampler.samples, lastFinal || Date.now());
    progress.note(`${label}: ${out.map((m) => `${m.id} p99 wait ${(m.p99WaitMs / 1000).toFixed(2)} s`).join(', ')}; PG max/window ${pg.maxInWindow}, 429 ${pg.status429}, utilisation ${pg.utilisation.toFixed(3)}`);
    return {
      run: { merchants: out, pg: { maxInWindow: pg.maxInWindow, status429: pg.status429, utilisation: pg.utilisation }, drained },
      firsts, startedAt, problems: stack.problems().errors,
    };
  } finally {
    await stack.stop();
  }
}

/**
 * A's and B's confirms while both had payments waiting: from 2 s in to 1 s before the first of
 * them ran out, which is when it had 99 % of its first confirms out. Not its last one: a straggler
 * (a job taken over after its worker's lock lapsed, a payment re-driven by the sweeper) would
 * stretch the window into seconds when only the other merchant had payments left.
 */
async function runWeights(ctx: BenchContext): Promise<{ result: WeightsResult; problems: string[] }> {
  const m = await runOnce(ctx, WEIGHTED, WEIGHTS_SECONDS, 'weights');
  const from = m.startedAt + 2_000;
  const to = Math.min(...m.firsts.map((f) => (f.length ? percentile(f, 99) : m.startedAt))) - 1_000;
  const within = m.firsts.map((f) => f.filter((t) => t >= from && t < to).length);
  return {
    result: {
      seconds: WEIGHTS_SECONDS,
      merchants: WEIGHTED.map((o, i) => ({ ...o, accepted: m.run.merchants[i]!.accepted, confirmsWhileBoth: within[i]! })),
      windowMs: [from - m.startedAt, to - m.startedAt],
      ratio: within[1]! > 0 ? within[0]! / within[1]! : Number.NaN,
      pg: { maxInWindow: m.run.pg.maxInWindow, status429: m.run.pg.status429 },
      drained: m.run.drained,
    },
    problems: m.problems,
  };
}

/** Runs the fair profile: {@link RUNS} pairs of single-merchant and fair runs, then the weights. */
export async function runFair(ctx: BenchContext): Promise<FairResult> {
  const fair: FairRun[] = [];
  const single: FairRun[] = [];
  const problems: string[] = [];
  for (let i = 0; i < RUNS; i++) {
    const s = await runOnce(ctx, [FLOOD], SECONDS, `fair ${i + 1}/${RUNS}, one merchant`);
    single.push(s.run);
    const f = await runOnce(ctx, [FLOOD, SMALL], SECONDS, `fair ${i + 1}/${RUNS}, two merchants`);
    fair.push(f.run);
    problems.push(...s.problems, ...f.problems);
  }
  const w = await runWeights(ctx);
  problems.push(...w.problems);
  ctx.progress.note(
    `fair: utilisation median ${median(fair.map((r) => r.pg.utilisation)).toFixed(3)} vs one merchant ${median(single.map((r) => r.pg.utilisation)).toFixed(3)}; ` +
      `weights 3:1 measured ${w.result.ratio.toFixed(2)}:1`,
  );
  return { seconds: SECONDS, fair, single, weights: w.result, problems };
}
