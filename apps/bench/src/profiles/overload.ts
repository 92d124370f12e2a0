/**
 * Scenario 1, overload: 1,000 payments/s offered open-loop (twice the PG's rate) for 60 s, then
 * wait until every payment is final. One call runs one configuration once, on a fresh stack and
 * a freshly reset simulator; the evidence is the simulator's arrival log and ledger and the
 * payments' records.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OverloadKey } from '../args.ts';
import { BacklogSampler, type BenchContext } from '../harness/context.ts';
import { createPool, openLoop, type OpenLoopResult } from '../harness/load.ts';
import { summarise, type Outcomes } from '../analysis/outcomes.ts';
import { analysePg, type PgAnalysis, type ViolationEpisode } from '../analysis/pg-analysis.ts';
import { callsBetween, commandStats, deleteMatching, readCounters, readPayments, topCommands } from '../harness/redis-tools.ts';
import { Stack } from '../harness/stack.ts';
import { cpuDelta, sampleCpu, type CpuSample } from '../analysis/cpu.ts';
import { median } from '../analysis/stats.ts';
import { episodeContext, StallProbe, summariseStalls, type StallSample, type StallSummary } from '../analysis/stall-probe.ts';

/** One configuration of the stack under overload. */
export interface OverloadConfig {
  key: OverloadKey;
  label: string;
  processes: number;
  env: Record<string, string>;
}

/** The overload configurations: the gate with 1 and 4 processes, and the baseline. */
export const CONFIGS: Record<OverloadKey, OverloadConfig> = {
  gate1: { key: 'gate1', label: 'gate, 1 worker process', processes: 1, env: {} },
  gate4: { key: 'gate4', label: 'gate, 4 worker processes', processes: 4, env: {} },
  baseline: {
    key: 'baseline',
    label: 'baseline: BullMQ limiter 500/1000 ms, no gate, 1 process',
    processes: 1,
    env: { GATE_ENABLED: 'false', BULLMQ_LIMITER_MAX: '500' },
  },
};

/** What one overload run measured. */
export interface OverloadRun {
  config: OverloadConfig;
  run: number;
  intake: OpenLoopResult;
  pg: PgAnalysis;
  outcomes: Outcomes;
  drained: boolean;
  /** First PG arrival → last payment final (s). */
  drainSeconds: number;
  peakConnections: number;
  /** CPU seconds per process from the first send to the end of the drain, and that wall time. */
  cpu: CpuSample;
  cpuWallSeconds: number;
  /** The gate's margin during the run (ms): median and max of 1 s samples; null without a gate. */
  margin: { median: number; max: number } | null;
  /** Redis's busiest commands over the run (whole server: neighbours included). */
  redisTop: { command: string; calls: number; usec: number }[];
  /** Redis commands over the run (all, scripts' own included) and script calls (the bench's own sampling included). */
  redisCalls: { total: number; scripts: number };
  /** The simulator's responsiveness over the run. */
  stalls: StallSummary;
  /** Per over-limit episode: the slowest simulator probe around it (null if none was taken). */
  violationStalls: (ViolationEpisode & { stall: StallSample | null; marginMs: number | null })[];
  /** Slots the gate granted over the run (0 without a gate). */
  slotsGranted: number;
  /** Jobs whose lock lapsed (stalled) plus lock renewals that failed, over the run. */
  stalled: number;
  problems: { errors: string[]; warnings: number };
}

/** How long the stack is up before the burst: the cold-start figure is for a stack that has been idle this long. */
const IDLE_BEFORE_LOAD_MS = 5_000;

/** One in fifty payments carries the simulator's decline marker. */
const DECLINE_EVERY = 50;

/**
 * Runs one overload configuration once. `inspect` reads what it needs of the run's keys after the
 * drain, before they are deleted (the cluster scenario counts where the payments are).
 */
export async function runOverload(ctx: BenchContext, config: OverloadConfig, run: number, inspect?: (prefix: string) => Promise<void>): Promise<OverloadRun> {
  const { opts, sim, progress } = ctx;
  const name = `overload ${config.key} #${run}`;
  progress.phase(`${name}: starting stack`);
  await sim.fresh();
  const prefix = ctx.newPrefix();
  const stack = new Stack(prefix, sim.pgUrl, config.env);
  try {
    await stack.startWorker(config.processes);
    const apiUrl = await stack.startApi();
    await new Promise((r) => setTimeout(r, IDLE_BEFORE_LOAD_MS));
    const sampler = new BacklogSampler(ctx, prefix);
    const probe = new StallProbe(sim.url, ctx.redis);
    const pool = createPool(apiUrl, 128);
    progress.phase(`${name}: load ${opts.rate}/s × ${opts.seconds}s`);
    const pids = { api: stack.api?.child.pid, worker: stack.worker?.child.pid, simulator: ctx.simPid };
    const cpuBefore = await sampleCpu(pids, ctx.redis);
    const cmdBefore = await commandStats(ctx.redis);
    const cpuFrom = Date.now();
    sampler.start();
    probe.start();
    const intake = await openLoop(pool, {
      rate: opts.rate,
      seconds: opts.seconds,
      tag: randomUUID().slice(0, 8),
      declineEvery: DECLINE_EVERY,
      onTick: (offered, accepted) => {
        progress.state.offered = offered;
        progress.state.accepted = accepted;
      },
    });
    await pool.close();
    progress.phase(`${name}: drain`);
    // Generous: three times the ideal drain of what was offered, and at least two minutes.
    const timeoutMs = Math.max(120_000, (3 * intake.accepted * 1_000) / 500);
    const drained = await sampler.waitEmpty(intake.lastAnswerAt, timeoutMs);
    const cpu = cpuDelta(cpuBefore, await sampleCpu(pids, ctx.redis));
    const cmdAfter = await commandStats(ctx.redis);
    const redisTop = topCommands(cmdBefore, cmdAfter);
    const redisCalls = callsBetween(cmdBefore, cmdAfter);
    const cpuWallSeconds = (Date.now() - cpuFrom) / 1_000;
    await sampler.stop();
    await probe.stop();
    progress.phase(`${name}: collecting evidence`);
    const [arrivals, ledger, stats, rows, counters] = await Promise.all([
      sim.arrivals(), sim.ledger(), sim.stats(), readPayments(ctx.redis, prefix, intake.ids), readCounters(ctx.redis, prefix),
    ]);
    const outcomes = summarise(intake.ids, rows, ledger);
    await inspect?.(prefix);
    if (opts.raw) {
      mkdirSync(opts.raw, { recursive: true });
      const file = join(opts.raw, `overload-${config.key}-${run}-${prefix.split("-").pop()}.json`);
      writeFileSync(file, JSON.stringify({ config, samples: sampler.samples, margins: sampler.margins, probes: probe.samples, arrivals: arrivals.map((a) => [a.t, a.endpoint, a.status]) }));
    }
    const lastSample = sampler.samples[sampler.samples.length - 1]?.t ?? Date.now();
    const drainEnd = Number.isFinite(outcomes.lastFinal) && drained ? outcomes.lastFinal : lastSample;
    const pg = analysePg(arrivals, sampler.samples, drainEnd);
    const result: OverloadRun = {
      config,
      run,
      intake,
      pg,
      outcomes,
      drained,
      drainSeconds: (drainEnd - pg.firstArrival) / 1_000,
      peakConnections: stats.peakConnections,
      cpu,
      cpuWallSeconds,
      margin: sampler.margins.length === 0 ? null : { median: median(sampler.margins.map((m) => m.marginMs)), max: Math.max(...sampler.margins.map((m) => m.marginMs)) },
      stalls: summariseStalls(probe.samples),
      violationStalls: pg.violations.map((v) => ({ ...v, ...episodeContext(probe.samples, sampler.margins, v.from, v.to) })),
      slotsGranted: sampler.slotsGranted,
      stalled: Number(counters['jobs:stalled'] ?? 0) + Number(counters['jobs:lockRenewalFailed'] ?? 0),
      redisTop,
      redisCalls,
      problems: stack.problems(),
    };
    progress.note(
      `${name}: accepted ${intake.accepted}/${intake.offered}, PG max/window ${pg.maxInWindow}, 429 ${pg.status429}, 503 ${pg.status503}, ` +
        `first seconds ${pg.firstSeconds.join('/')}, utilisation ${pg.utilisation.toFixed(3)}, drain ${result.drainSeconds.toFixed(1)}s (ideal ${pg.idealSeconds.toFixed(1)}s)${drained ? '' : ' NOT DRAINED'}`,
    );
    return result;
  } finally {
    await stack.stop();
    await deleteMatching(ctx.redis, `${prefix}:*`);
  }
}
