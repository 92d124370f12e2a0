/**
 * Scenario 3, faults: a moderate load (2,000 payments at 300/s) against a PG that answers late,
 * drops connections, and answers 500/502 both after and without committing. It measures what
 * resolving the doubt costs (PG calls per in-doubt payment, time to final) and checks that no
 * money rule broke.
 */
import { randomUUID } from 'node:crypto';
import { BacklogSampler, type BenchContext } from '../harness/context.ts';
import { createPool, openLoop, type OpenLoopResult } from '../harness/load.ts';
import { summarise, type Outcomes } from '../analysis/outcomes.ts';
import { analysePg, type PgAnalysis } from '../analysis/pg-analysis.ts';
import { deleteMatching, readPayments } from '../harness/redis-tools.ts';
import { Stack } from '../harness/stack.ts';

/** The worker's read timeout (its default); late answers come a few seconds after it. */
export const HEADERS_TIMEOUT_MS = 5_000;

/** The simulator's faults for the faults scenario. */
export const FAULT_KNOBS = {
  lateRate: 0.1,
  lateMs: HEADERS_TIMEOUT_MS + 3_000,
  dropRate: 0.03,
  ambiguousCommitRate: 0.015,
  ambiguousNoCommitRate: 0.015,
  providerErrorCommitRate: 0.01,
  providerErrorNoCommitRate: 0.01,
};

/** What the faults scenario measured. */
export interface FaultsResult {
  knobs: typeof FAULT_KNOBS;
  rate: number;
  intake: OpenLoopResult;
  outcomes: Outcomes;
  pg: PgAnalysis;
  drained: boolean;
  problems: { errors: string[]; warnings: number };
}

/** Runs the faults scenario on a fresh stack. */
export async function runFaults(ctx: BenchContext): Promise<FaultsResult> {
  const { opts, sim, progress } = ctx;
  progress.phase('faults: starting stack');
  await sim.fresh(FAULT_KNOBS);
  const prefix = ctx.newPrefix();
  const stack = new Stack(prefix, sim.pgUrl, { PG_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS) });
  try {
    await stack.startWorker(1);
    const apiUrl = await stack.startApi();
    const sampler = new BacklogSampler(ctx, prefix);
    const pool = createPool(apiUrl, 64);
    progress.phase(`faults: ${opts.faultPayments} payments at ${opts.faultRate}/s`);
    sampler.start();
    const intake = await openLoop(pool, {
      rate: opts.faultRate,
      seconds: opts.faultPayments / opts.faultRate,
      tag: randomUUID().slice(0, 8),
      declineEvery: 50,
      onTick: (offered, accepted) => {
        progress.state.offered = offered;
        progress.state.accepted = accepted;
      },
    });
    await pool.close();
    progress.phase('faults: drain');
    const drained = await sampler.waitEmpty(intake.lastAnswerAt, 300_000);
    await sampler.stop();
    const [arrivals, ledger, rows] = await Promise.all([sim.arrivals(), sim.ledger(), readPayments(ctx.redis, prefix, intake.ids)]);
    const outcomes = summarise(intake.ids, rows, ledger);
    const end = Number.isFinite(outcomes.lastFinal) ? outcomes.lastFinal : Date.now();
    const pg = analysePg(arrivals, sampler.samples, end);
    progress.note(`faults: ${outcomes.inDoubt.count} in doubt, ${JSON.stringify(outcomes.byStatus)}, ${drained ? 'drained' : 'NOT DRAINED'}`);
    return { knobs: FAULT_KNOBS, rate: opts.faultRate, intake, outcomes, pg, drained, problems: stack.problems() };
  } finally {
    await stack.stop();
    await deleteMatching(ctx.redis, `${prefix}:*`);
  }
}
