/**
 * The latency-bound run: with slow approvals the PG's 200 connections bind before its rate does.
 * By Little's law a client can keep at most `connections ÷ mean latency` requests per second
 * going, so with a 1.5 s median (5 s p99) the ceiling is far under 500/s. The run is short and
 * is not drained: it measures the PG's steady arrival rate, then stops the stack.
 */
import { randomUUID } from 'node:crypto';
import { BacklogSampler, type BenchContext } from '../harness/context.ts';
import { createPool, openLoop } from '../harness/load.ts';
import { rateBetween } from '../analysis/pg-analysis.ts';
import { deleteMatching } from '../harness/redis-tools.ts';
import { lognormalMeanMs } from '../harness/sim-client.ts';
import { Stack } from '../harness/stack.ts';
import { maxInRollingWindow } from '@sluice/pg-simulator';
import { connectionsPerProcess, testConfig, workerConcurrency as workerConcurrencyOf } from '@sluice/config';

/** What the latency-bound run measured against Little's-law ceiling. */
export interface LatencyBoundResult {
  medianMs: number;
  p99Ms: number;
  meanMs: number;
  connections: number;
  /** WORKER_CONCURRENCY of the run: how many confirms one process runs at once. */
  workerConcurrency: number;
  /** connections ÷ mean latency (per second). */
  littleCeiling: number;
  /** min(connections, worker concurrency) ÷ mean latency: what can be in flight at once. */
  effectiveCeiling: number;
  /** PG arrivals per second over the steady part of the load. */
  achieved: number;
  windowSeconds: number;
  offered: number;
  accepted: number;
  /** Intake answers other than 202, by status. */
  others: Map<string, number>;
  maxInWindow: number;
  status429: number;
  status503: number;
  peakConnections: number;
  problems: { errors: string[]; warnings: number };
}

/**
 * One latency-bound run, with the product's defaults for connections and worker concurrency, or
 * with WORKER_CONCURRENCY set to `concurrency`.
 */
export async function runLatencyBound(ctx: BenchContext, concurrency?: number): Promise<LatencyBoundResult> {
  const env: Record<string, string> = { WORKER_SHUTDOWN_GRACE_MS: '1000' };
  if (concurrency !== undefined) env.WORKER_CONCURRENCY = String(concurrency);
  // What the worker will run with, from the same config code it uses.
  const config = testConfig(env);
  const workerConcurrency = workerConcurrencyOf(config);
  const { opts, sim, progress } = ctx;
  const medianMs = 1_500;
  const p99Ms = 5_000;
  const connections = connectionsPerProcess(config);
  progress.phase(`latency-bound (worker concurrency ${workerConcurrency}): starting stack`);
  await sim.fresh({ latencyMedianMs: medianMs, latencyP99Ms: p99Ms });
  const prefix = ctx.newPrefix();
  // A short grace: the run is not drained, and what is in flight at the end does not matter.
  const stack = new Stack(prefix, sim.pgUrl, env);
  try {
    await stack.startWorker(1);
    const apiUrl = await stack.startApi();
    const sampler = new BacklogSampler(ctx, prefix);
    const pool = createPool(apiUrl, 128);
    progress.phase(`latency-bound (worker concurrency ${workerConcurrency}): load ${opts.rate}/s × ${opts.latencySeconds}s`);
    sampler.start();
    const started = Date.now();
    const intake = await openLoop(pool, {
      rate: opts.rate,
      seconds: opts.latencySeconds,
      tag: randomUUID().slice(0, 8),
      onTick: (offered, accepted) => {
        progress.state.offered = offered;
        progress.state.accepted = accepted;
      },
    });
    const ended = Date.now();
    await pool.close();
    await sampler.stop();
    const [arrivals, stats] = await Promise.all([sim.arrivals(), sim.stats()]);
    // Skip the start: the connections fill up, and the first answers to come back are the short
    // approvals, so the rate overshoots for a few mean latencies before it settles.
    const from = started + Math.min(8_000, (opts.latencySeconds * 1_000) / 2);
    const achieved = rateBetween(arrivals, from, ended);
    const meanMs = lognormalMeanMs(medianMs, p99Ms);
    const result: LatencyBoundResult = {
      medianMs,
      p99Ms,
      meanMs,
      connections,
      workerConcurrency,
      littleCeiling: connections / (meanMs / 1_000),
      effectiveCeiling: Math.min(connections, workerConcurrency) / (meanMs / 1_000),
      achieved,
      windowSeconds: (ended - from) / 1_000,
      offered: intake.offered,
      accepted: intake.accepted,
      others: intake.others,
      maxInWindow: maxInRollingWindow(arrivals.map((a) => a.t), 1_000),
      status429: stats.status429,
      status503: stats.status503,
      peakConnections: stats.peakConnections,
      problems: stack.problems(),
    };
    progress.note(`latency-bound (worker concurrency ${workerConcurrency}): PG ${achieved.toFixed(1)} rps vs Little ceiling ${result.littleCeiling.toFixed(1)} rps, peak connections ${stats.peakConnections}`);
    return result;
  } finally {
    await stack.stop(5_000);
    await deleteMatching(ctx.redis, `${prefix}:*`);
  }
}
