/**
 * CPU per payment (issue "Lean hot paths"). Sluice's figures come from the overload runs with the
 * gate and one worker process (CPU of each process from the first send to the end of the drain,
 * Redis's commands from INFO commandstats over the same span); this profile runs the yardstick
 * beside them: a naive Express + BullMQ gateway (naive-gateway.ts) under the same open-loop load
 * (rate × seconds) against the same simulator, measured the same way.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { startProcess } from '@sluice/test-support';
import { sampleCpu, cpuDelta, type CpuSample } from '../analysis/cpu.ts';
import type { BenchContext } from '../harness/context.ts';
import { createPool, openLoop, type OpenLoopResult } from '../harness/load.ts';
import { callsBetween, commandStats, deleteMatching, REDIS_URL } from '../harness/redis-tools.ts';
import { PG_SECRET_KEY, stopProc } from '../harness/stack.ts';

/** What the naive gateway did under the overload's load. */
export interface NaiveRun {
  intake: OpenLoopResult;
  drained: boolean;
  cpu: CpuSample;
  /** Redis commands (all, scripts' own included) and script calls over the run. */
  redisCalls: { total: number; scripts: number };
}

/** Runs the naive gateway once under the overload's rate and duration, until its queue is empty. */
export async function runNaive(ctx: BenchContext): Promise<NaiveRun> {
  const { opts, sim, progress, redis } = ctx;
  await sim.fresh();
  const prefix = ctx.newPrefix();
  const env = { REDIS_URL, NAIVE_PREFIX: prefix, PG_BASE_URL: sim.pgUrl, PG_SECRET_KEY, PORT: '0' };
  const worker = startProcess('apps/bench/src/profiles/naive-gateway.ts', { ...env, NAIVE_ROLE: 'worker' });
  const api = startProcess('apps/bench/src/profiles/naive-gateway.ts', { ...env, NAIVE_ROLE: 'api' });
  const queue = new Queue('confirm', { connection: redis.duplicate({ maxRetriesPerRequest: null }), prefix });
  try {
    await worker.waitFor(/naive worker ready/);
    const port = (await api.waitFor(/naive api ready (\d+)/))[1];
    const pool = createPool(`http://127.0.0.1:${port}`, 128);
    progress.phase(`cpu: naive BullMQ gateway, ${opts.rate}/s × ${opts.seconds}s`);
    const pids = { api: api.child.pid, worker: worker.child.pid, simulator: ctx.simPid };
    const before = await sampleCpu(pids, redis);
    const cmdBefore = await commandStats(redis);
    const intake = await openLoop(pool, { rate: opts.rate, seconds: opts.seconds, tag: `naive-${randomUUID().slice(0, 8)}` });
    await pool.close();
    progress.phase('cpu: naive gateway drains');
    const deadline = Date.now() + Math.max(120_000, (3 * intake.accepted * 1_000) / 500);
    let drained = false;
    while (Date.now() < deadline) {
      const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children');
      if (Object.values(c).every((n) => n === 0)) {
        drained = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const cpu = cpuDelta(before, await sampleCpu(pids, redis));
    const redisCalls = callsBetween(cmdBefore, await commandStats(redis));
    progress.note(`cpu: naive gateway accepted ${intake.accepted}/${intake.offered}, drained ${drained}, cpu api ${cpu.api?.toFixed(1)} s worker ${cpu.worker?.toFixed(1)} s`);
    return { intake, drained, cpu, redisCalls };
  } finally {
    await queue.close();
    await Promise.all([stopProc(api, 5_000), stopProc(worker, 10_000)]).catch(() => undefined);
    await deleteMatching(redis, `${prefix}:*`);
  }
}
